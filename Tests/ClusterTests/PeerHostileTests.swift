import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Agents in a swarm against hostile and failing peers (issue 23): malformed and badly signed
    /// chunk requests on a running agent's peer port, and a peer that stops (SIGSTOP) before or in
    /// the middle of sending a chunk, whose reader falls back to the chunkservers.
    @Suite("Agents against hostile and stopped peers (speedy peer --tracker)", .serialized)
    struct PeerHostileTests {
        let swarm = PeerSwarmTests()
        var agents: PeerAgentTests { swarm.agents }

        /// Signs requests as `PeerKey` does (docs/security.md, "The peer secret"), with SpeedyCore's
        /// SHA-256 alone: HMAC-SHA-256 under HKDF-SHA-256(secret, info `speedy peer requests v1`).
        /// The agent's 200 for a request signed here is what proves the two agree.
        struct Signer {
            let key: [UInt8]

            init(secret: String) {
                key = Self.hmac(Self.hmac([UInt8](repeating: 0, count: 32), Array(secret.utf8)), Array("speedy peer requests v1".utf8) + [1])
            }

            init(secretFile: String) throws {
                self.init(secret: try String(contentsOfFile: secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
            }

            static func sha256(_ bytes: [UInt8]) -> [UInt8] {
                let hex = Array(Digest.of(bytes).hex.utf8)
                func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x61 + 10 }
                return stride(from: 0, to: hex.count, by: 2).map { nibble(hex[$0]) << 4 | nibble(hex[$0 + 1]) }
            }

            static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
                var block = key.count > 64 ? sha256(key) : key
                block += [UInt8](repeating: 0, count: 64 - block.count)
                let inner = sha256(block.map { $0 ^ 0x36 } + message)
                return sha256(block.map { $0 ^ 0x5c } + inner)
            }

            /// `Authorization: SpeedyPeer <agent>.<ms>.<mac>` for `GET target` (no body).
            func authorization(_ target: String, agent: String, ms: Int64 = currentTimeMillis(), method: String = "GET") -> String {
                let message = "speedy-peer-v1|\(method)|\(target)|\(agent)|\(ms)|\(Digest.of([]).hex)"
                let mac = Data(Self.hmac(key, Array(message.utf8))).base64EncodedString()
                    .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
                return "SpeedyPeer \(agent).\(ms).\(mac)"
            }
        }

        /// Starts agent `name` in the swarm with `arguments` more (``PeerSwarmTests/startAgent``
        /// with a chunk timeout of its own).
        func startAgent(
            _ cluster: ClusterHarness, _ name: String, registry: String, tracker: String, secretFile: String, uploadRate: String, arguments: [String]
        ) async throws -> PeerSwarmTests.Agent {
            let port = ClusterHarness.freePort()
            let peerPort = ClusterHarness.freePort()
            let cache = cluster.root + "/\(name)-cache"
            let process = try cluster.start(
                name,
                [
                    "peer", "--listen", "127.0.0.1:\(port)", "--registry", registry, "--cache", cache, "--tracker", tracker,
                    "--peer-listen", "127.0.0.1:\(peerPort)", "--peer-secret-file", secretFile, "--upload-rate", uploadRate,
                ] + arguments)
            let url = "http://127.0.0.1:\(port)"
            let ready = await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: url, transport: .plain).send(.GET, "/readyz"))?.status == 200
            }
            guard ready else { throw HarnessError("agent \(name) did not come up:\n\(cluster.log(name))") }
            return .init(name: name, peer: .init(url: url, hostPort: "127.0.0.1:\(port)", process: process), peerURL: "http://127.0.0.1:\(peerPort)", cache: cache)
        }

        /// The tracker's holders of `digest`, asked as agent `probe` with a good signature.
        func holders(_ tracker: String, _ digest: String, signer: Signer) async throws -> [SwarmPeers.Peer] {
            let target = "/v1/peers/\(digest)?agent=probe"
            let reply = try await ServiceClient(baseURL: tracker, transport: .plain).send(.GET, target, headers: [("Authorization", signer.authorization(target, agent: "probe"))])
            guard reply.status == 200 else { return [] }
            return try WireJSON.decoder().decode(SwarmPeers.self, from: Data(reply.body.readableBytesView)).peers
        }

        func code(_ body: ByteBuffer) -> String? {
            (try? WireJSON.decoder().decode(ErrorBody.self, from: Data(body.readableBytesView)))?.code
        }

        @Test func malformedAndBadlySignedChunkRequestsAreRefusedAndTheAgentServesOn() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // 5 MB: a layer of two chunks, cached on agent a by a pull through it.
            let (registry, layout, secretFile) = try await swarm.swarmSetUp(cluster, layerBytes: 5_000_000)
            let tracker = try await swarm.startTracker(cluster, secretFile: secretFile).url
            let a = try await swarm.startAgent(cluster, "a", registry: registry.registryURL, tracker: tracker, secretFile: secretFile, uploadRate: "64M")
            let pulled = await swarm.pull(a, "team/app:v1", into: "pulled-a", root: cluster.root)
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.roleLogs(["a"]))")
            let layer = try agents.checkLayout(cluster.root + "/pulled-a", from: layout)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: cluster.root + "/pulled-a/blobs/sha256/" + layer.digest.dropFirst(7))))
            let signer = try Signer(secretFile: secretFile)
            let port = ServiceClient(baseURL: a.peerURL, transport: .plain)
            func get(_ target: String, agent: String = "agent-b") async throws -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) {
                try await port.send(.GET, target, headers: [("Authorization", signer.authorization(target, agent: agent))])
            }
            func good() async throws {
                let target = "/v1/peer/blobs/\(layer.digest)?offset=1000&length=5000"
                let reply = try await get(target)
                #expect(reply.status == 200, "\(String(buffer: reply.body))\n\(cluster.roleLogs(["a"]))")
                #expect(Array(reply.body.readableBytesView) == Array(bytes[1000..<6000]))
            }
            try await good()

            // Malformed targets, signed right: 400 BAD_REQUEST, with a reason.
            let size = layer.size
            let malformed = [
                "/v1/peer/blobs/not-a-digest?offset=0&length=1",
                "/v1/peer/blobs/sha256:1234?offset=0&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=-1&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=zero&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=0&length=-1",
                "/v1/peer/blobs/\(layer.digest)?offset=0&length=ten",
                "/v1/peer/blobs/\(layer.digest)?offset=18446744073709551616&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=0&length=18446744073709551616",
                "/v1/peer/blobs/\(layer.digest)?offset=18446744073709551615&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=9223372036854775807&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=0&length=0",
                "/v1/peer/blobs/\(layer.digest)?offset=0&length=67108865",
                "/v1/peer/blobs/\(layer.digest)?length=1",
                "/v1/peer/blobs/\(layer.digest)",
                // Within the protocol's bounds but past the end of the cached blob.
                "/v1/peer/blobs/\(layer.digest)?offset=0&length=\(size + 1)",
                "/v1/peer/blobs/\(layer.digest)?offset=\(size - 1)&length=2",
                "/v1/peer/blobs/\(layer.digest)?offset=\(size)&length=1",
                // Past Int64.max as a file offset: once a trap in pread (off_t), now refused first.
                "/v1/peer/blobs/\(layer.digest)?offset=9223372036854775808&length=1",
                "/v1/peer/blobs/\(layer.digest)?offset=9223372036854775806&length=1",
            ]
            for target in malformed {
                let reply = try await get(target)
                #expect(reply.status == 400, "\(target): \(reply.status) \(String(buffer: reply.body))")
                #expect(code(reply.body) == "BAD_REQUEST", "\(target): \(String(buffer: reply.body))")
                #expect(a.peer.process.isRunning, "\(target) stopped the agent:\n\(cluster.roleLogs(["a"]))")
            }
            // A blob the agent does not hold: 404 BLOB_UNKNOWN.
            let unknown = try await get("/v1/peer/blobs/\(Digest.of([1, 2, 3]))?offset=0&length=1")
            #expect(unknown.status == 404 && code(unknown.body) == "BLOB_UNKNOWN", "\(String(buffer: unknown.body))")

            // Signatures: unsigned, stale, from the future, another secret, another target, another
            // agent's name on the MAC, other schemes and shapes: 401 UNAUTHORIZED each.
            let target = "/v1/peer/blobs/\(layer.digest)?offset=0&length=4096"
            let now = currentTimeMillis()
            let stranger = Signer(secret: "not-the-swarm-secret-0123456789abcdef")
            let signedAsB = signer.authorization(target, agent: "agent-b", ms: now)
            let refused: [(String, String?)] = [
                ("unsigned", nil),
                ("a minute and more old", signer.authorization(target, agent: "agent-b", ms: now - 61_000)),
                ("a minute and more ahead", signer.authorization(target, agent: "agent-b", ms: now + 61_000)),
                ("another secret", stranger.authorization(target, agent: "agent-b")),
                ("another target", signer.authorization("/v1/peer/blobs/\(layer.digest)?offset=4096&length=4096", agent: "agent-b")),
                ("another method", signer.authorization(target, agent: "agent-b", method: "HEAD")),
                ("agent-c's name on agent-b's MAC", signedAsB.replacingOccurrences(of: "SpeedyPeer agent-b.", with: "SpeedyPeer agent-c.")),
                ("another time on the MAC", signedAsB.replacingOccurrences(of: ".\(now)", with: ".\(now + 1)")),
                ("no MAC", "SpeedyPeer agent-b.\(now)."),
                ("bad agent id", signer.authorization(target, agent: "agent-b").replacingOccurrences(of: "agent-b", with: "agent_b")),
                ("Bearer", "Bearer " + signedAsB),
                ("too long", signedAsB + String(repeating: "A", count: 300)),
            ]
            for (what, header) in refused {
                let reply = try await port.send(.GET, target, headers: header.map { [("Authorization", $0)] } ?? [])
                #expect(reply.status == 401, "\(what): \(reply.status)")
                #expect(code(reply.body) == "UNAUTHORIZED", "\(what): \(String(buffer: reply.body))")
                #expect(reply.headers.first(name: "WWW-Authenticate") == "SpeedyPeer realm=\"speedy-peers\"", "\(what)")
            }
            // A replay of the good signature within its minute reads the same chunk again (documented).
            let replay = try await port.send(.GET, target, headers: [("Authorization", signedAsB)])
            #expect(replay.status == 200)

            // The tracker: a lookup must name its signer (403 for another agent's name), a digest (400).
            let trackerClient = ServiceClient(baseURL: tracker, transport: .plain)
            let forOther = "/v1/peers/\(layer.digest)?agent=someone-else"
            let forbidden = try await trackerClient.send(.GET, forOther, headers: [("Authorization", signer.authorization(forOther, agent: "mallory"))])
            #expect(forbidden.status == 403 && code(forbidden.body) == "FORBIDDEN", "\(String(buffer: forbidden.body))")
            let badDigest = "/v1/peers/sha256:nope?agent=probe"
            let notADigest = try await trackerClient.send(.GET, badDigest, headers: [("Authorization", signer.authorization(badDigest, agent: "probe"))])
            #expect(notADigest.status == 400 && code(notADigest.body) == "BAD_REQUEST", "\(String(buffer: notADigest.body))")
            let staleLookup = "/v1/peers/\(layer.digest)?agent=probe"
            let stale = try await trackerClient.send(
                .GET, staleLookup, headers: [("Authorization", signer.authorization(staleLookup, agent: "probe", ms: now - 120_000))])
            #expect(stale.status == 401)
            #expect(try await holders(tracker, layer.digest, signer: signer).contains { $0.address == a.peerURL })

            // After all that, the agent is up and serves a good request; no header reached its log.
            #expect(a.peer.process.isRunning, "\(cluster.roleLogs(["a"]))")
            try await good()
            #expect(!cluster.log("a").contains(signedAsB))
            #expect(cluster.log("a").contains("refused GET"), "refusals are logged")
        }

        /// Agent a holds the layer (and says so to the tracker); b pulls it while a is stopped.
        func stoppedPeerSetUp(_ cluster: ClusterHarness, uploadRate: String) async throws -> (
            a: PeerSwarmTests.Agent, b: PeerSwarmTests.Agent, layout: String, layer: (digest: String, size: Int)
        ) {
            // 12 MB: a layer of three 4 MiB chunks.
            let (registry, layout, secretFile) = try await swarm.swarmSetUp(cluster, layerBytes: 12_000_000)
            let tracker = try await swarm.startTracker(cluster, secretFile: secretFile).url
            func agent(_ name: String) async throws -> PeerSwarmTests.Agent {
                try await startAgent(
                    cluster, name, registry: registry.registryURL, tracker: tracker, secretFile: secretFile, uploadRate: uploadRate,
                    arguments: ["--chunk-timeout", "2s"])
            }
            let a = try await agent("a")
            let first = await swarm.pull(a, "team/app:v1", into: "pulled-a", root: cluster.root)
            #expect(first.status == 0, "\(first.output)\n\(cluster.roleLogs(["a"]))")
            let layer = try agents.checkLayout(cluster.root + "/pulled-a", from: layout)
            let b = try await agent("b")
            // b will learn from the tracker that a holds every chunk of the layer, in hand.
            let signer = try Signer(secretFile: secretFile)
            let known = await cluster.eventually(within: 15) {
                let peers = (try? await holders(tracker, layer.digest, signer: signer)) ?? []
                return peers.contains { $0.address == a.peerURL && $0.have == .full(count: 3) && $0.held == .full(count: 3) }
            }
            #expect(known, "the tracker never listed a as holding the layer\n\(cluster.roleLogs(["a", "tracker"]))")
            return (a, b, layout, layer)
        }

        /// Resumes and stops `agent`, which must still be alive.
        func resumeAndStop(_ cluster: ClusterHarness, _ agent: PeerSwarmTests.Agent) async {
            let process = agent.peer.process
            kill(process.processIdentifier, SIGCONT)
            let alive = await cluster.eventually(within: 10) {
                (try? await ServiceClient(baseURL: agent.peer.url, transport: .plain).send(.GET, "/healthz"))?.status == 200
            }
            #expect(alive, "\(cluster.roleLogs([agent.name]))")
            kill(process.processIdentifier, SIGTERM)
            await process.exited()
        }

        @Test func aPeerStoppedBeforeItAnswersCostsTheChunkTimeoutThenTheChunkserversServe() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (a, b, layout, layer) = try await stoppedPeerSetUp(cluster, uploadRate: "64M")

            // a stops (its port still accepts connections: the kernel does that): b's requests
            // to it get no answer's head, and after --chunk-timeout (2 s) b reads the chunkservers.
            kill(a.peer.process.processIdentifier, SIGSTOP)
            let started = ContinuousClock.now
            let second = await swarm.pull(b, "team/app:v1", into: "pulled-b", root: cluster.root)
            let took = ContinuousClock.now - started
            let logs = cluster.roleLogs(["b", "tracker"])
            #expect(second.status == 0, "\(second.output)\n\(logs)")
            try agents.checkLayout(cluster.root + "/pulled-b", from: layout)
            print("pull with a stopped peer: \(took)")
            #expect(took >= .milliseconds(1_900), "b never waited on a: did it learn a holds the layer? \(took)\n\(logs)")
            #expect(took < .seconds(2 * 2 + 15), "b took \(took) with a stopped peer and a 2 s chunk timeout\n\(logs)")
            let fromChunkservers = try await agents.metric(b.peer, "speedy_peer_chunkserver_bytes_total")
            #expect(fromChunkservers >= Double(layer.size), "\(Int(fromChunkservers)) bytes from the chunkservers\n\(logs)")
            #expect(try await agents.metric(b.peer, "speedy_peer_peer_bytes_total") == 0)
            #expect(try await agents.metric(b.peer, "speedy_peer_failed_downloads_total") == 0)

            await resumeAndStop(cluster, a)
        }

        @Test func aPeerStoppedMidChunkIsLeftForTheChunkservers() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // a sends 1 MB/s: a 4 MiB chunk takes it 4 s, so it is stopped with chunks half sent.
            let (a, b, layout, layer) = try await stoppedPeerSetUp(cluster, uploadRate: "1M")

            let root = cluster.root
            async let pulling = swarm.pull(b, "team/app:v1", into: "pulled-b", root: root)
            let sending = await cluster.eventually(within: 15) {
                ((try? await agents.metric(a.peer, "speedy_peer_uploaded_bytes_total")) ?? 0) >= 300_000
            }
            #expect(sending, "a never sent b the layer's chunks\n\(cluster.roleLogs(["a", "b"]))")
            kill(a.peer.process.processIdentifier, SIGSTOP)
            let stopped = ContinuousClock.now
            let second = await pulling
            let took = ContinuousClock.now - stopped
            let logs = cluster.roleLogs(["b", "tracker"])
            #expect(second.status == 0, "\(second.output)\n\(logs)")
            try agents.checkLayout(cluster.root + "/pulled-b", from: layout)
            print("pull with a peer stopped mid-chunk: done \(took) after the stop")
            // A peer's body may pause for the swarm's chunk wait (10 s) plus --chunk-timeout before
            // b gives up on it (docs/peer.md, "Lying and dying peers"); the idle check samples four
            // times a period, so a stall is seen within 1¼ of it; the rest comes from chunkservers.
            #expect(took < .seconds(12 * 5 / 4 + 8), "b took \(took) after a stopped mid-chunk\n\(logs)")
            let fromChunkservers = try await agents.metric(b.peer, "speedy_peer_chunkserver_bytes_total")
            let fromPeers = try await agents.metric(b.peer, "speedy_peer_peer_bytes_total")
            print("b read \(Int(fromChunkservers)) bytes from the chunkservers, \(Int(fromPeers)) from peers")
            #expect(fromChunkservers > 0, "\(logs)")
            #expect(fromChunkservers + fromPeers >= Double(layer.size), "\(logs)")
            #expect(try await agents.metric(b.peer, "speedy_peer_failed_downloads_total") == 0)

            await resumeAndStop(cluster, a)
        }
    }
}

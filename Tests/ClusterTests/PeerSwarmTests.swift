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
    /// Agents in a swarm (issue 23, part 3): a tracker, a registry cluster and four agents on
    /// loopback, pulling one image with skopeo at once while one agent dies mid-pull and one
    /// feeds corrupt chunks.
    @Suite("Agents in a swarm (speedy peer --tracker)", .serialized)
    struct PeerSwarmTests {
        let agents = PeerAgentTests()

        /// A running agent in the swarm.
        struct Agent {
            var name: String
            var peer: PeerAgentTests.Peer
            var peerURL: String
            var cache: String
        }

        /// Starts `speedy tracker` with `secretFile`; returns its URL and process.
        func startTracker(_ cluster: ClusterHarness, secretFile: String, port: Int? = nil) async throws -> (url: String, process: Process) {
            let port = port ?? ClusterHarness.freePort()
            let process = try cluster.start("tracker", ["tracker", "--listen", "127.0.0.1:\(port)", "--peer-secret-file", secretFile, "--announce-interval", "2s"])
            let url = "http://127.0.0.1:\(port)"
            let ready = await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: url, transport: .plain).send(.GET, "/readyz"))?.status == 200
            }
            guard ready else { throw HarnessError("speedy tracker did not come up:\n\(cluster.log("tracker"))") }
            return (url, process)
        }

        /// Starts agent `name` in the swarm, its cache in ROOT/NAME-cache.
        func startAgent(_ cluster: ClusterHarness, _ name: String, registry: String, tracker: String, secretFile: String, uploadRate: String) async throws -> Agent {
            let port = ClusterHarness.freePort()
            let peerPort = ClusterHarness.freePort()
            let cache = cluster.root + "/\(name)-cache"
            let process = try cluster.start(
                name,
                [
                    "peer", "--listen", "127.0.0.1:\(port)", "--registry", registry, "--cache", cache, "--tracker", tracker,
                    "--peer-listen", "127.0.0.1:\(peerPort)", "--peer-secret-file", secretFile, "--upload-rate", uploadRate,
                ])
            let url = "http://127.0.0.1:\(port)"
            let ready = await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: url, transport: .plain).send(.GET, "/readyz"))?.status == 200
            }
            guard ready else { throw HarnessError("agent \(name) did not come up:\n\(cluster.log(name))") }
            return Agent(name: name, peer: .init(url: url, hostPort: "127.0.0.1:\(port)", process: process), peerURL: "http://127.0.0.1:\(peerPort)", cache: cache)
        }

        /// Pulls `image` through `agent` into ROOT/`into` with skopeo.
        func pull(_ agent: Agent, _ image: String, into: String, root: String) async -> (status: Int32, output: String) {
            // On a thread of its own: a blocking wait on the test pool's two threads would hold
            // back the test's own polling (the kill of b) until a pull ends.
            let hostPort = agent.peer.hostPort
            return (try? await ClusterHarness.run("/usr/bin/skopeo", ["copy", "--src-tls-verify=false", "docker://\(hostPort)/\(image)", "oci:\(root)/\(into):v1"]))
                ?? (-1, "skopeo did not run")
        }

        /// Flips one byte in every 4 MiB of the cached blob `hex`: the agent serves it as it is.
        func corrupt(_ agent: Agent, hex: String) throws {
            let path = agent.cache + "/blobs/sha256/" + hex
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
            defer { try? handle.close() }
            let size = try handle.seekToEnd()
            var offset: UInt64 = 1000
            while offset < size {
                try handle.seek(toOffset: offset)
                let byte = try handle.read(upToCount: 1)![0]
                try handle.seek(toOffset: offset)
                try handle.write(contentsOf: [byte ^ 0xFF])
                offset += 4 << 20
            }
        }

        /// A registry holding `team/app:v1`, a layer of `bytes` random bytes, and a peer secret in
        /// ROOT/peer.secret: what every test here starts from.
        func swarmSetUp(_ cluster: ClusterHarness, layerBytes bytes: Int) async throws -> (registry: ClusterHarness.Registry, layout: String, secretFile: String) {
            let registry = try await cluster.startRegistry()
            let layout = try await cluster.makeImage(named: "app", randomBytes: bytes)
            let push = try await agents.skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let secretFile = cluster.root + "/peer.secret"
            try SecretFile.write(ClusterSecret.generate().value + "\n", to: secretFile)
            return (registry, layout, secretFile)
        }

        @Test func fourAgentsPullOneImageWhileOneDiesAndOneLies() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // 40 MB of random data: a layer of ten 4 MiB chunks.
            let (registry, layout, secretFile) = try await swarmSetUp(cluster, layerBytes: 40_000_000)
            let tracker = try await startTracker(cluster, secretFile: secretFile).url
            func agent(_ name: String) async throws -> Agent {
                try await startAgent(cluster, name, registry: registry.registryURL, tracker: tracker, secretFile: secretFile, uploadRate: "8M")
            }

            // The liar pulls the image first, then its cached layer rots on disk: it announces
            // every chunk and serves them as they are.
            let liar = try await agent("liar")
            let first = await pull(liar, "team/app:v1", into: "pulled-liar", root: cluster.root)
            #expect(first.status == 0, "\(first.output)\n\(cluster.roleLogs(["liar"]))")
            let layer = try agents.checkLayout(cluster.root + "/pulled-liar", from: layout)
            try corrupt(liar, hex: String(layer.digest.dropFirst(7)))

            let (a, b, c) = (try await agent("a"), try await agent("b"), try await agent("c"))
            // Give the tracker the liar's full announce (every 2 s) before the pulls start.
            try await Task.sleep(for: .seconds(2.5))
            async let pullA = pull(a, "team/app:v1", into: "pulled-a", root: cluster.root)
            async let pullB = pull(b, "team/app:v1", into: "pulled-b", root: cluster.root)
            async let pullC = pull(c, "team/app:v1", into: "pulled-c", root: cluster.root)
            // b dies once chunks flow into it.
            let started = await cluster.eventually(within: 20) {
                let chunks = (try? await agents.metric(b.peer, "speedy_peer_chunkserver_bytes_total")) ?? 0
                let fromPeers = (try? await agents.metric(b.peer, "speedy_peer_peer_bytes_total")) ?? 0
                return chunks + fromPeers > 0
            }
            #expect(started, "\(cluster.roleLogs(["b"]))")
            kill(b.peer.process.processIdentifier, SIGKILL)
            let (resultA, _, resultC) = await (pullA, pullB, pullC)
            let logs = cluster.roleLogs(["a", "c", "tracker"])
            #expect(resultA.status == 0, "\(resultA.output)\n\(logs)")
            #expect(resultC.status == 0, "\(resultC.output)\n\(logs)")
            try agents.checkLayout(cluster.root + "/pulled-a", from: layout)
            try agents.checkLayout(cluster.root + "/pulled-c", from: layout)

            var bad = 0.0
            for survivor in [a, c] {
                bad += try await agents.metric(survivor.peer, "speedy_peer_bad_peer_chunks_total")
                let fromPeers = try await agents.metric(survivor.peer, "speedy_peer_peer_bytes_total")
                let fromChunkservers = try await agents.metric(survivor.peer, "speedy_peer_chunkserver_bytes_total")
                print("swarm pull: layer \(layer.size) bytes; \(survivor.name) read \(Int(fromChunkservers)) from the chunkservers, \(Int(fromPeers)) from peers")
                // Every good chunk is counted once, from wherever it came: nothing was stored
                // twice, nor left out. How much came from peers rather than the chunkservers
                // depends on timing (the lab measures it); that a survivor met the liar does not.
                let total = fromPeers + fromChunkservers
                #expect(total >= Double(layer.size) && total < Double(layer.size + (1 << 20)), "\(survivor.name): \(Int(fromPeers)) + \(Int(fromChunkservers)) bytes for a \(layer.size)-byte layer\n\(logs)")
            }
            // Every chunk of the liar's is bad: whoever asked it first dropped it and reported it.
            #expect(bad >= 1, "\(logs)")
            #expect(cluster.log("a").contains("wrong length or CRC") || cluster.log("c").contains("wrong length or CRC"))

            // A stranger can read nothing from an agent's peer port, signed wrongly or not at all.
            let stranger = ServiceClient(baseURL: a.peerURL, transport: .plain)
            let target = "/v1/peer/blobs/\(layer.digest)?offset=0&length=\(4 << 20)"
            #expect(try await stranger.send(.GET, target).status == 401)
            let forged = "SpeedyPeer intruder.\(currentTimeMillis()).\(String(repeating: "A", count: 43))"
            #expect(try await stranger.send(.GET, target, headers: [("Authorization", forged)]).status == 401)
            #expect(!cluster.log("a").contains(forged))
        }

        /// The tracker keeps nothing on disk and neither does an agent's announce: after both
        /// restart, the agent announces its cached blobs again (from its swarm index) and a new
        /// agent reads the layer from it rather than from the chunkservers.
        @Test func aRestartedTrackerAndAgentFindEachOtherAgain() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (registry, layout, secretFile) = try await swarmSetUp(cluster, layerBytes: 12_000_000)
            var tracker = try await startTracker(cluster, secretFile: secretFile)
            func agent(_ name: String) async throws -> Agent {
                try await startAgent(cluster, name, registry: registry.registryURL, tracker: tracker.url, secretFile: secretFile, uploadRate: "64M")
            }
            var seeder = try await agent("seeder")
            let first = await pull(seeder, "team/app:v1", into: "pulled-seeder", root: cluster.root)
            #expect(first.status == 0, "\(first.output)")
            let layer = try agents.checkLayout(cluster.root + "/pulled-seeder", from: layout)

            // Both restart: the tracker on its port, the agent on its cache (a new id, a new port).
            let trackerPort = Int(tracker.url.split(separator: ":").last!)!
            for process in [tracker.process, seeder.peer.process] {
                kill(process.processIdentifier, SIGKILL)
                await process.exited()
            }
            tracker = try await startTracker(cluster, secretFile: secretFile, port: trackerPort)
            seeder = try await agent("seeder")
            try await Task.sleep(for: .seconds(1))

            let leecher = try await agent("leecher")
            let second = await pull(leecher, "team/app:v1", into: "pulled-leecher", root: cluster.root)
            #expect(second.status == 0, "\(second.output)")
            try agents.checkLayout(cluster.root + "/pulled-leecher", from: layout)
            let fromPeers = try await agents.metric(leecher.peer, "speedy_peer_peer_bytes_total")
            let fromChunkservers = try await agents.metric(leecher.peer, "speedy_peer_chunkserver_bytes_total")
            let logs = cluster.roleLogs(["seeder", "leecher", "tracker"])
            #expect(fromPeers >= Double(layer.size), "\(Int(fromPeers)) bytes from peers\n\(logs)")
            #expect(fromChunkservers < Double(layer.size), "\(Int(fromChunkservers)) bytes from the chunkservers\n\(logs)")
            #expect(try await agents.metric(seeder.peer, "speedy_peer_uploaded_bytes_total") >= Double(layer.size))
        }
    }
}

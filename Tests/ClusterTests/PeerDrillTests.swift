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
    /// Drills on `speedy peer` (issue 23): clients that stop reading or stop half-way through a
    /// request are cut off by `--client-idle-timeout` while the agent serves on, and a swarm
    /// whose tracker is killed (SIGKILL) and restarted in the middle of three pulls finishes them.
    @Suite("Node agent drills (speedy peer)", .serialized)
    struct PeerDrillTests {
        let swarm = PeerSwarmTests()
        var agents: PeerAgentTests { swarm.agents }

        /// A socket connected to 127.0.0.1:`port`; with `receiveBuffer`, its receive buffer is set
        /// that small before the connect, so the window the server sees stays small.
        static func connect(port: Int, receiveBuffer: Int32? = nil) -> Int32? {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { return nil }
            if var size = receiveBuffer {
                setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
            }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let result = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else {
                close(fd)
                return nil
            }
            return fd
        }

        /// The local port of socket `fd`.
        static func localPort(_ fd: Int32) -> Int {
            var addr = sockaddr_in()
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
            return Int(UInt16(bigEndian: addr.sin_port))
        }

        static func send(_ fd: Int32, _ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// Whether the server's end of the loopback connection from `clientPort` to `serverPort`
        /// is still open in the server's process: its row in /proc/net/tcp is ESTABLISHED (01).
        /// Once the server closes it, the row moves to FIN_WAIT1 and on (or is gone), whether or
        /// not the client has read what is still in flight; nothing is read from the client's
        /// socket to find out, so the check itself is no progress the server could see.
        static func serverSideOpen(serverPort: Int, clientPort: Int) -> Bool {
            guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return false }
            let local = String(format: "0100007F:%04X", serverPort)
            let remote = String(format: "0100007F:%04X", clientPort)
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst() {
                let columns = line.split(separator: " ")
                if columns.count > 3, columns[1] == local, columns[2] == remote { return columns[3] == "01" }
            }
            return false
        }

        /// Reads `fd` until the server's end of file (or a reset), at most `seconds` of silence:
        /// every byte that came, and whether the end came (false: the read timed out, the
        /// connection still open).
        static func readToEnd(_ fd: Int32, seconds: Int = 10) -> (bytes: [UInt8], ended: Bool) {
            var timeout = timeval(tv_sec: seconds, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var reply: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n > 0 {
                    reply += buffer[0..<n]
                    continue
                }
                if n == 0 { return (reply, true) }
                return (reply, errno != EAGAIN && errno != EWOULDBLOCK)
            }
        }

        /// The largest blob of an OCI layout (its layer): digest and size.
        func largestBlob(_ layout: String) throws -> (digest: String, size: Int) {
            var largest = ("", 0)
            for hex in try FileManager.default.contentsOfDirectory(atPath: layout + "/blobs/sha256") {
                let size = (try FileManager.default.attributesOfItem(atPath: layout + "/blobs/sha256/" + hex)[.size] as? Int) ?? 0
                if size > largest.1 { largest = ("sha256:" + hex, size) }
            }
            return largest
        }

        /// Two clients against an agent run with `--client-idle-timeout 2s`: one asks for a 20 MB
        /// layer and never reads the body (a 4 KiB receive buffer), the other sends half a request
        /// line and stops. The agent closes both within a few idle periods, and then serves a
        /// whole pull as before.
        @Test func clientsThatStopReadingOrSendingAreCutOffAndTheAgentServesOn() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            // 20 MB of random data: a layer of five 4 MiB chunks, far more than the sockets buffer.
            let layout = try await cluster.makeImage(named: "app", randomBytes: 20_000_000)
            let push = try await agents.skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let layer = try largestBlob(layout)
            let peer = try await agents.startPeer(cluster, registry: registry.registryURL, arguments: ["--client-idle-timeout", "2s"])
            let agentPort = Int(peer.hostPort.split(separator: ":").last!)!

            // The reader that never reads: a whole blob GET, then nothing.
            let reader = try #require(Self.connect(port: agentPort, receiveBuffer: 4096))
            defer { close(reader) }
            let started = ContinuousClock.now
            Self.send(reader, "GET /v2/team/app/blobs/\(layer.digest) HTTP/1.1\r\nHost: \(peer.hostPort)\r\n\r\n")
            // The sender that stops half-way through its request line.
            let sender = try #require(Self.connect(port: agentPort))
            defer { close(sender) }
            Self.send(sender, "GET /v2/team/app/blobs/sha2")
            let readerPort = Self.localPort(reader), senderPort = Self.localPort(sender)
            #expect(Self.serverSideOpen(serverPort: agentPort, clientPort: readerPort), "the agent never accepted the reader")
            #expect(Self.serverSideOpen(serverPort: agentPort, clientPort: senderPort), "the agent never accepted the sender")

            var readerClosed: Duration?, senderClosed: Duration?
            let deadline = started + .seconds(20)
            while ContinuousClock.now < deadline && (readerClosed == nil || senderClosed == nil) {
                try await Task.sleep(for: .milliseconds(50))
                if readerClosed == nil, !Self.serverSideOpen(serverPort: agentPort, clientPort: readerPort) { readerClosed = .now - started }
                if senderClosed == nil, !Self.serverSideOpen(serverPort: agentPort, clientPort: senderPort) { senderClosed = .now - started }
            }
            print("client idle timeout 2s: the reader that stopped reading was cut off after \(readerClosed.map { "\($0)" } ?? "never"), the half-sent request after \(senderClosed.map { "\($0)" } ?? "never")")
            let logs = cluster.roleLogs(["peer"])
            let reading = try #require(readerClosed, "the agent never closed the connection of a client that stopped reading\n\(logs)")
            let sending = try #require(senderClosed, "the agent never closed the connection of a half-sent request\n\(logs)")
            // The watchdog checks four times a period: a stall is seen within 1¼ periods of its
            // start; the response's first bytes wait on the chunk map and the first chunks.
            #expect(reading >= .milliseconds(1_900) && reading < .seconds(2 * 3 + 2), "cut off after \(reading)\n\(logs)")
            #expect(sending >= .milliseconds(1_900) && sending < .seconds(2 * 3 + 2), "cut off after \(sending)\n\(logs)")
            #expect(cluster.log("peer").contains("closing the connection of GET /v2/team/app/blobs/\(layer.digest)"), "\(logs)")

            // What the reader gets when it finally reads: a 200 and its head, some of the body,
            // then the end of the connection well before the Content-Length.
            let (bytes, ended) = Self.readToEnd(reader)
            #expect(ended, "the reader's connection was still open")
            let text = String(decoding: bytes.prefix(2048), as: UTF8.self)
            #expect(text.hasPrefix("HTTP/1.1 200"), "\(text.prefix(300))")
            #expect(text.lowercased().contains("content-length: \(layer.size)"), "\(text.prefix(600))")
            #expect(bytes.count < layer.size, "the reader got \(bytes.count) bytes of a \(layer.size)-byte layer")
            #expect(Self.readToEnd(sender).ended, "the half-sent request's connection was still open")

            // The agent serves on: a whole pull through it, every blob checked against its digest.
            #expect(peer.process.isRunning, "\(logs)")
            let pull = try await agents.skopeo(["copy", "--src-tls-verify=false", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pull.status == 0, "\(pull.output)\n\(cluster.roleLogs(["peer"]))")
            let pulled = try agents.checkLayout(cluster.root + "/pulled", from: layout)
            #expect(pulled.digest == layer.digest && pulled.size == layer.size)
            // The response the watchdog cut off failed no source: it is no failed download.
            let failed = try await agents.metric(peer, "speedy_peer_failed_downloads_total")
            #expect(failed == 0, "a client cut off is not a failed download\n\(logs)")
        }

        /// The swarm's summary as the tracker at `url` has it, asked with a good signature.
        func summary(_ url: String, signer: PeerHostileTests.Signer) async -> SwarmSummary? {
            let target = "/v1/swarm"
            guard let reply = try? await ServiceClient(baseURL: url, transport: .plain).send(.GET, target, headers: [("Authorization", signer.authorization(target, agent: "probe"))]),
                reply.status == 200
            else { return nil }
            return try? WireJSON.decoder().decode(SwarmSummary.self, from: Data(reply.body.readableBytesView))
        }

        /// Three agents of a swarm pull one 40 MB image at once; mid-pull the tracker is killed
        /// with SIGKILL and started again on its port. Every pull finishes with the right digests,
        /// and the new tracker knows all three agents, and the whole layer at each, within one
        /// announce interval (2 s here).
        @Test func threePullsFinishWhenTheTrackerIsKilledAndRestartedMidPull() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // 40 MB of random data: a layer of ten 4 MiB chunks.
            let (registry, layout, secretFile) = try await swarm.swarmSetUp(cluster, layerBytes: 40_000_000)
            let layer = try largestBlob(layout)
            var tracker = try await swarm.startTracker(cluster, secretFile: secretFile)
            let trackerPort = Int(tracker.url.split(separator: ":").last!)!
            func agent(_ name: String) async throws -> PeerSwarmTests.Agent {
                // Two chunks at a time, uploads at 8 MB/s: a pull lasts long enough for the kill
                // to land in its middle.
                try await PeerHostileTests().startAgent(
                    cluster, name, registry: registry.registryURL, tracker: tracker.url, secretFile: secretFile, uploadRate: "8M",
                    arguments: ["--chunk-window", "2"])
            }
            let (a, b, c) = (try await agent("a"), try await agent("b"), try await agent("c"))
            let signer = try PeerHostileTests.Signer(secretFile: secretFile)
            let everyoneKnown = await cluster.eventually(within: 10) { await summary(tracker.url, signer: signer)?.agents == 3 }
            #expect(everyoneKnown, "the tracker never knew all three agents\n\(cluster.roleLogs(["tracker", "a", "b", "c"]))")

            let root = cluster.root
            // skopeo on threads of their own (``ClusterHarness/run(_:_:environment:errors:)``): three blocking
            // runs on the two threads of the test's task pool would stall the watch below until
            // a pull ended, and the kill would come after the pulls.
            func timedPull(_ agent: PeerSwarmTests.Agent) async -> (status: Int32, output: String, took: Duration) {
                let started = ContinuousClock.now
                let result: (status: Int32, output: String) = (try? await ClusterHarness.run(
                    "/usr/bin/skopeo", ["copy", "--src-tls-verify=false", "docker://\(agent.peer.hostPort)/team/app:v1", "oci:\(root)/pulled-\(agent.name):v1"]))
                    ?? (-1, "skopeo did not run")
                return (result.status, result.output, .now - started)
            }
            let pullsStarted = ContinuousClock.now
            async let pullA = timedPull(a)
            async let pullB = timedPull(b)
            async let pullC = timedPull(c)
            // The tracker dies once the layer's chunks flow into an agent (a download's file in
            // its cache's tmp/ passes 1 MiB: the config is a few hundred bytes), and its swarm with
            // it. The files are watched rather than /metrics: asking three busy agents takes long.
            func layerDownloading(_ agent: PeerSwarmTests.Agent) -> Bool {
                let tmp = agent.cache + "/tmp"
                return ((try? FileManager.default.contentsOfDirectory(atPath: tmp)) ?? []).contains { name in
                    ((try? FileManager.default.attributesOfItem(atPath: tmp + "/" + name)[.size] as? Int) ?? 0) > 1 << 20
                }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline, ![a, b, c].contains(where: layerDownloading) { try await Task.sleep(for: .milliseconds(20)) }
            #expect([a, b, c].contains(where: layerDownloading), "no layer download started\n\(cluster.roleLogs(["a", "b", "c", "tracker"]))")
            // No agent has the whole layer yet: every pull is in its middle (or before it).
            let hex = String(layer.digest.dropFirst(7))
            let doneAtKill = [a, b, c].filter { FileManager.default.fileExists(atPath: $0.cache + "/blobs/sha256/" + hex) }.map(\.name)
            kill(tracker.process.processIdentifier, SIGKILL)
            await tracker.process.exited()
            let killedAt = ContinuousClock.now - pullsStarted
            #expect(doneAtKill.isEmpty, "\(doneAtKill) had the whole layer when the tracker died")
            var before: [String: Double] = [:]
            for agent in [a, b, c] { before[agent.name] = try await agents.metric(agent.peer, "speedy_peer_served_bytes_total") }
            // A second without a tracker: lookups and announces fail meanwhile.
            try await Task.sleep(for: .seconds(1))
            tracker = try await swarm.startTracker(cluster, secretFile: secretFile, port: trackerPort)
            let restarted = ContinuousClock.now
            var knownAgain: Duration?
            while knownAgain == nil, ContinuousClock.now < restarted + .seconds(15) {
                if await summary(tracker.url, signer: signer)?.agents == 3 { knownAgain = .now - restarted } else { try await Task.sleep(for: .milliseconds(100)) }
            }

            let results = await [pullA, pullB, pullC]
            let logs = cluster.roleLogs(["a", "b", "c", "tracker"])
            let line = zip(["a", "b", "c"], results).map { "\($0.0) \($0.1.took)" }.joined(separator: ", ")
            print("tracker killed \(killedAt) into the pulls (served just after: \(before.sorted { $0.key < $1.key }.map { "\($0.key) \(Int($0.value))" }.joined(separator: ", "))); pulls took \(line); the restarted tracker knew all three agents \(knownAgain.map { "after \($0)" } ?? "never")")
            for (name, result) in zip(["a", "b", "c"], results) {
                #expect(result.status == 0, "\(name): \(result.output)\n\(logs)")
                let pulled = try agents.checkLayout(cluster.root + "/pulled-\(name)", from: layout)
                #expect(pulled.digest == layer.digest && pulled.size == layer.size, "\(name)")
                #expect(result.took < .seconds(45), "\(name) took \(result.took)")
            }
            var sources: [String] = []
            for agent in [a, b, c] {
                let fromChunkservers = try await agents.metric(agent.peer, "speedy_peer_chunkserver_bytes_total")
                let fromPeers = try await agents.metric(agent.peer, "speedy_peer_peer_bytes_total")
                sources.append("\(agent.name) \(Int(fromChunkservers)) from the chunkservers, \(Int(fromPeers)) from peers")
            }
            print("after the tracker's kill: " + sources.joined(separator: "; "))
            for agent in [a, b, c] {
                #expect(agent.peer.process.isRunning, "\(agent.name)\n\(logs)")
                #expect(try await agents.metric(agent.peer, "speedy_peer_failed_downloads_total") == 0, "\(agent.name)\n\(logs)")
            }
            // Every agent announces in full every interval (2 s), and at once to a tracker it
            // could not reach: the new one knows all three within the interval (and a margin
            // for three agents' announce loops, which tick every quarter second).
            let known = try #require(knownAgain, "the restarted tracker never knew all three agents\n\(logs)")
            #expect(known <= .milliseconds(2_750), "the restarted tracker knew all three agents after \(known)\n\(logs)")
            // And it knows each holds the whole layer, in hand.
            let chunks = (layer.size + (4 << 20) - 1) / (4 << 20)
            let everyoneHolds = await cluster.eventually(within: 5) {
                let peers = (try? await PeerHostileTests().holders(tracker.url, layer.digest, signer: signer)) ?? []
                return [a, b, c].allSatisfy { agent in peers.contains { $0.address == agent.peerURL && $0.have == .full(count: chunks) && $0.held == .full(count: chunks) } }
            }
            #expect(everyoneHolds, "\(logs)")
        }
    }
}

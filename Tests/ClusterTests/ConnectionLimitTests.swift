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
    /// `--max-connections-per-client` and `--header-timeout` on real roles, with raw sockets.
    @Suite("Connection limits")
    struct ConnectionLimitTests {
        /// Polls until the server has closed `fd`, for at most `seconds`; how long that took, or nil.
        static func closed(_ fd: Int32, within seconds: Double) async -> Duration? {
            let started = ContinuousClock.now
            while ContinuousClock.now - started < .milliseconds(Int64(seconds * 1000)) {
                if LoopbackSocket.peerClosed(fd) { return ContinuousClock.now - started }
                try? await Task.sleep(for: .milliseconds(25))
            }
            return nil
        }

        static func send(_ fd: Int32, _ text: String) {
            let bytes = Array(text.utf8)
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }

        /// Everything the server has sent on `fd` so far, without waiting.
        static func received(_ fd: Int32) -> String {
            var reply: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n <= 0 { break }
                reply += buffer[0..<n]
            }
            return String(decoding: reply, as: UTF8.self)
        }

        @Test func aClientGetsItsShareOfConnectionsAndTrickledHeadsAreCutOff() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(
                imageserverArguments: ["--max-connections-per-client", "4"], chunkserverArguments: ["--header-timeout", "1s"])
            let port = HostileClientTests.port(of: registry.hostPort)

            // Of eight connections that send nothing, at most four are held (the head's 20 s
            // have not passed; the test's own client may hold some of the four already); the
            // rest are closed as they connect.
            let sockets = (0..<8).compactMap { _ in LoopbackSocket.openStalled(port: port, "") }
            #expect(sockets.count == 8)
            try await Task.sleep(for: .seconds(1))
            let closed = sockets.filter { LoopbackSocket.peerClosed($0) }
            #expect(closed.count >= 4, "\(8 - closed.count) connections held")
            #expect(closed.count < 8, "none held")
            try await Task.sleep(for: .milliseconds(500))
            #expect(sockets.filter { LoopbackSocket.peerClosed($0) }.count == closed.count, "a held connection was closed")
            // Given back, they are the client's again.
            sockets.forEach { close($0) }
            try await Task.sleep(for: .milliseconds(300))
            let again = HostileClientTests.rawRequest(port: port, "/v2/")
            #expect(again.status == 200, "\(again)")
            print("connection limits: \(closed.count) of 8 connections closed on connecting, \(8 - closed.count) held")

            // A chunkserver with --header-timeout 1s: a head trickled a line every 200 ms is
            // answered 408 and closed after about a second, as is a connection that sends nothing.
            let chunkserver = HostileClientTests.port(of: registry.chunkservers[0].addr)
            let trickle = try #require(LoopbackSocket.openStalled(port: chunkserver, "GET /healthz HTTP/1.1\r\nHost: x\r\n"))
            defer { close(trickle) }
            let silent = try #require(LoopbackSocket.openStalled(port: chunkserver, ""))
            defer { close(silent) }
            let started = ContinuousClock.now
            var reply = ""
            var cutAfter: Duration?
            for i in 0..<40 {
                Self.send(trickle, "X-Pad-\(i): x\r\n")
                try await Task.sleep(for: .milliseconds(200))
                reply += Self.received(trickle)
                if LoopbackSocket.peerClosed(trickle) {
                    cutAfter = ContinuousClock.now - started
                    break
                }
            }
            reply += Self.received(trickle)
            let cut = try #require(cutAfter, "a trickled head kept its connection for 8 s")
            #expect(cut >= .milliseconds(800) && cut < .seconds(6), "\(cut)")
            #expect(reply.hasPrefix("HTTP/1.1 408"), "\(reply)")
            #expect(await Self.closed(silent, within: 6) != nil, "a silent connection was not closed")
            print("connection limits: a trickled head was cut off after \(cut)")

            // The clock runs only while a head is under way: a kept-alive connection idle for two
            // seconds after its request is still served.
            let kept = try #require(LoopbackSocket.openStalled(port: chunkserver, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
            defer { close(kept) }
            try await Task.sleep(for: .seconds(2))
            #expect(Self.received(kept).hasPrefix("HTTP/1.1 200"))
            #expect(!LoopbackSocket.peerClosed(kept), "an idle kept-alive connection was closed by the head's deadline")
            Self.send(kept, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            try await Task.sleep(for: .milliseconds(500))
            #expect(Self.received(kept).hasPrefix("HTTP/1.1 200"))

            // Both closings are counted.
            let metrics = try await ServiceClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).send(.GET, "/metrics")
            #expect(String(buffer: metrics.body).contains(#"speedy_connections_refused_total{reason="header_timeout"}"#))
            let imageMetrics = try await ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport).send(.GET, "/metrics")
            #expect(String(buffer: imageMetrics.body).contains(#"speedy_connections_refused_total{reason="per_client_cap"}"#))
        }

        /// Behind a trusted proxy (here the test itself, on 127.0.0.1), each forwarded client has
        /// its own rate limit, and the log names it.
        @Test func aTrustedProxysClientsAreLimitedAndLoggedEachOnTheirOwn() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--rate-limit", "2", "--trusted-proxy", "127.0.0.1/32"])
            let port = HostileClientTests.port(of: registry.hostPort)
            func status(forwardedFor client: String) -> Int {
                let reply = LoopbackSocket.sendRaw(
                    port: port, "GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 198.51.100.66, \(client)\r\nConnection: close\r\n\r\n")
                return reply.hasPrefix("HTTP/1.1 ") ? Int(reply.dropFirst(9).prefix(3)) ?? 0 : 0
            }
            // One client, twelve requests at once: past its burst of 4, 429.
            let same = (0..<12).map { _ in status(forwardedFor: "203.0.113.1") }
            #expect(same.contains(429), "\(same)")
            // Twelve clients, one request each: each has its own bucket.
            let many = (1...12).map { status(forwardedFor: "203.0.113.\(100 + $0)") }
            #expect(many.allSatisfy { $0 == 200 }, "\(many)")
            let log = cluster.log("imageserver")
            #expect(log.contains("client=203.0.113.101"), "the log names the forwarded client")
            #expect(!log.contains("client=198.51.100.66"), "never what the client claimed further left")
        }

        @Test func badLimitFlagsExitTwo() async throws {
            for (arguments, message) in [
                (["--max-connections-per-client", "-1"], "--max-connections-per-client"),
                (["--header-timeout", "0s"], "--header-timeout"),
                (["--trusted-proxy", "10.0.0.0/33"], "--trusted-proxy"),
                (["--trusted-proxy", "10.0.0.0/8", "--trusted-proxy-header", "via"], "--trusted-proxy-header"),
            ] {
                let run = try await ClusterHarness.run(ClusterHarness.binDirectory + "/speedy", ["imageserver", "--insecure"] + arguments)
                #expect(run.status == 2, "\(arguments): \(run.output)")
                #expect(run.output.contains(message), "\(arguments): \(run.output)")
            }
        }
    }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// A cluster whose every internal port speaks TLS with certificates from `speedy
    /// certificates`: heartbeats, chunk writes, metadata calls and chunktool all verify the
    /// private CA given with --ca.
    @Suite("Internal TLS", .serialized)
    struct InternalTLSTests {
        /// Certificates from `speedy certificates` in the cluster's directory: the CA's file, and
        /// the flags that serve a role with them and trust the CA.
        static func certificates(_ cluster: ClusterHarness) async throws -> (ca: String, serving: [String]) {
            let tls = cluster.root + "/tls"
            let made = try await ClusterHarness.run(ClusterHarness.binDirectory + "/speedy", ["certificates", "--out", tls])
            #expect(made.status == 0, "\(made.output)")
            let ca = tls + "/ca.crt"
            return (ca, ["--tls-cert", tls + "/private/server.crt", "--tls-key", tls + "/private/server.key", "--ca", ca])
        }

        @Test func theWholeClusterSpeaksTLS() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (ca, serving) = try await Self.certificates(cluster)

            let masterPort = ClusterHarness.freePort()
            let masterURL = "https://127.0.0.1:\(masterPort)"
            try cluster.start(
                "master",
                ["chunkmaster", "--listen", "127.0.0.1:\(masterPort)", "--data", cluster.root + "/master", "--down-after", "1.5", "--allow-same-zone"] + serving)
            for i in 1...3 {
                try cluster.start(
                    "cs\(i)",
                    [
                        "chunkserver", "--master", masterURL, "--group", "1", "--listen", "127.0.0.1:\(ClusterHarness.freePort())",
                        "--data", cluster.root + "/cs\(i)", "--id", "cs\(i)", "--volume-size", "64M", "--reserve", "0", "--heartbeat-interval", "0.25",
                    ] + serving)
            }
            let metaPort = ClusterHarness.freePort()
            try cluster.start("meta", ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--data", cluster.root + "/meta"] + serving)
            let registryPort = ClusterHarness.freePort()
            try cluster.start(
                "imageserver",
                ["imageserver", "--listen", "127.0.0.1:\(registryPort)", "--master", masterURL, "--meta", "https://127.0.0.1:\(metaPort)", "--ca", ca])

            // chunktool verifies the CA; the group comes up healthy over TLS heartbeats.
            let healthy = await cluster.eventually(within: 30) {
                guard let status = try? await cluster.chunktool(["status", "--master", masterURL, "--ca", ca, "--json"]) else { return false }
                return status.status == 0 && status.output.components(separatedBy: "\"RW\"").count - 1 == 3
            }
            #expect(healthy, "\(cluster.log("master"))\n\(cluster.log("cs1"))")
            // Without the CA, the certificate is not trusted: the tool could not run.
            #expect(try await cluster.chunktool(["status", "--master", masterURL]).status == 2)
            // Plain HTTP to a TLS port gets no answer.
            #expect(LoopbackSocket.sendRaw(port: masterPort, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 200") == false)

            // A blob through the registry: chunk writes to the chunkservers and the metadata
            // calls all went over TLS.
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(registryPort)", timeout: .seconds(60), transport: .plain)
            let ready = await cluster.eventually(within: 20) { (try? await client.send(.GET, "/v2/"))?.status == 200 }
            #expect(ready, "\(cluster.log("imageserver"))")
            let data = TestBytes.random(6_000_000, seed: 13)
            let digest = Digest.of(data)
            let push = try await client.send(.POST, "/v2/tls/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(push.status == 201, "\(String(buffer: push.body))\n\(cluster.log("imageserver"))")
            let pull = try await client.send(.GET, "/v2/tls/app/blobs/\(digest)")
            #expect(pull.status == 200)
            #expect(Array(pull.body.readableBytesView) == data)
        }

        /// Whether a client that speaks only TLS `minimum`…`maximum` (and only `ciphers`, when
        /// given) completes a handshake with 127.0.0.1:`port`, trusting `ca`, and gets `/healthz`.
        static func handshakes(port: Int, ca: String, minimum: TLSVersion = .tlsv1, maximum: TLSVersion?, ciphers: String? = nil) async -> Bool {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(ca)
            tls.minimumTLSVersion = minimum
            tls.maximumTLSVersion = maximum
            if let ciphers { tls.cipherSuites = ciphers }
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            // A refused handshake is the answer, not something to retry until the deadline.
            configuration.connectionPool.retryConnectionEstablishment = false
            configuration.timeout = .init(connect: .seconds(5), read: .seconds(5))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let answered = (try? await client.execute(HTTPClientRequest(url: "https://127.0.0.1:\(port)/healthz"), timeout: .seconds(10)))?.status == .ok
            try? await client.shutdown()
            return answered
        }

        /// Issue 20: every TLS port took TLS 1.0 and 1.1 (NIOSSL's default floor). Now 1.2 is the
        /// least (`--tls-min-version 1.3` raises it), TLS 1.2 offers ECDHE with AES-GCM or
        /// ChaCha20-Poly1305 only, and any other `--tls-min-version` is a usage error.
        @Test func tlsPortsRefuseOldVersionsAndWeakCiphers() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (ca, serving) = try await Self.certificates(cluster)
            let masterPort = ClusterHarness.freePort()
            try cluster.start("master", ["chunkmaster", "--listen", "127.0.0.1:\(masterPort)", "--data", cluster.root + "/master"] + serving)
            let strictPort = ClusterHarness.freePort()
            try cluster.start(
                "strict", ["chunkmaster", "--listen", "127.0.0.1:\(strictPort)", "--data", cluster.root + "/strict", "--tls-min-version", "1.3"] + serving)
            let registryPort = ClusterHarness.freePort()
            try cluster.start(
                "imageserver",
                [
                    "imageserver", "--listen", "127.0.0.1:\(registryPort)", "--master", "https://127.0.0.1:\(masterPort)",
                    "--meta", "https://127.0.0.1:\(ClusterHarness.freePort())",
                ] + serving)
            for (name, port) in [("master", masterPort), ("strict", strictPort), ("imageserver", registryPort)] {
                let up = await cluster.eventually(within: 30) { await Self.handshakes(port: port, ca: ca, minimum: .tlsv13, maximum: nil) }
                #expect(up, "\(name) never answered over TLS 1.3: \(cluster.log(name))")
            }
            for port in [masterPort, registryPort] {
                #expect(await !Self.handshakes(port: port, ca: ca, maximum: .tlsv1), "TLS 1.0 on \(port)")
                #expect(await !Self.handshakes(port: port, ca: ca, maximum: .tlsv11), "TLS 1.1 on \(port)")
                #expect(await Self.handshakes(port: port, ca: ca, minimum: .tlsv12, maximum: .tlsv12), "TLS 1.2 on \(port)")
                // TLS 1.2 with CBC or without ECDHE is refused; AES-GCM and ChaCha20 are taken.
                for weak in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "AES128-GCM-SHA256", "AES128-SHA"] {
                    #expect(await !Self.handshakes(port: port, ca: ca, maximum: .tlsv12, ciphers: weak), "\(weak) on \(port)")
                }
                for good in ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"] {
                    #expect(await Self.handshakes(port: port, ca: ca, minimum: .tlsv12, maximum: .tlsv12, ciphers: good), "\(good) on \(port)")
                }
            }
            #expect(await !Self.handshakes(port: strictPort, ca: ca, maximum: .tlsv12), "TLS 1.2 with --tls-min-version 1.3")

            // Any other version is a usage error (exit 2), before anything starts.
            for bad in ["1.1", "1.0", "1", "tls1.2", "1.2.0", ""] {
                let refused = try await ClusterHarness.run(
                    ClusterHarness.binDirectory + "/speedy",
                    ["chunkmaster", "--listen", "127.0.0.1:\(ClusterHarness.freePort())", "--data", cluster.root + "/bad", "--tls-min-version", bad] + serving)
                #expect(refused.status == 2, "--tls-min-version '\(bad)': \(refused.status) \(refused.output)")
                #expect(refused.output.contains("tls-min-version"), "\(refused.output)")
            }
        }
    }
}

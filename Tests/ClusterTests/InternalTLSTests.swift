import Foundation
import NIOCore
import NIOHTTP1
import SpeedyCore
import Testing

extension ProcessSuites {
    /// A cluster whose every internal port speaks TLS with certificates from `speedy
    /// certificates`: heartbeats, chunk writes, metadata calls and chunktool all verify the
    /// private CA given with --ca.
    @Suite("Internal TLS", .serialized)
    struct InternalTLSTests {
        @Test func theWholeClusterSpeaksTLS() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let tls = cluster.root + "/tls"
            let made = try ClusterHarness.run(ClusterHarness.binDirectory + "/speedy", ["certificates", "--out", tls])
            #expect(made.status == 0, "\(made.output)")
            let ca = tls + "/ca.crt"
            let serving = ["--tls-cert", tls + "/private/server.crt", "--tls-key", tls + "/private/server.key", "--ca", ca]

            let masterPort = ClusterHarness.freePort()
            let masterURL = "https://127.0.0.1:\(masterPort)"
            try cluster.start("master", ["chunkmaster", "--listen", "127.0.0.1:\(masterPort)", "--data", cluster.root + "/master", "--down-after", "1.5"] + serving)
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
                guard let status = try? cluster.chunktool(["status", "--master", masterURL, "--ca", ca, "--json"]) else { return false }
                return status.status == 0 && status.output.components(separatedBy: "\"RW\"").count - 1 == 3
            }
            #expect(healthy, "\(cluster.log("master"))\n\(cluster.log("cs1"))")
            // Without the CA, the certificate is not trusted: the tool could not run.
            #expect(try cluster.chunktool(["status", "--master", masterURL]).status == 2)
            // Plain HTTP to a TLS port gets no answer.
            #expect(ClusterHarness.sendRaw(port: masterPort, "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n").hasPrefix("HTTP/1.1 200") == false)

            // A blob through the registry: chunk writes to the chunkservers and the metadata
            // calls all went over TLS.
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(registryPort)", timeout: .seconds(60), secret: nil)
            let ready = await cluster.eventually(within: 20) { (try? await client.send(.GET, "/v2/"))?.status == 200 }
            #expect(ready, "\(cluster.log("imageserver"))")
            let data = (0..<6_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ ($0 >> 10)) }
            let digest = Digest.of(data)
            let push = try await client.send(.POST, "/v2/tls/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(push.status == 201, "\(String(buffer: push.body))\n\(cluster.log("imageserver"))")
            let pull = try await client.send(.GET, "/v2/tls/app/blobs/\(digest)")
            #expect(pull.status == 200)
            #expect(Array(pull.body.readableBytesView) == data)
        }
    }
}

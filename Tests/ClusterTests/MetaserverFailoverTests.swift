import Foundation
import NIOCore
import NIOHTTP1
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Several metaservers on one database, and an imageserver that names them all.
    @Suite("Metaserver failover", .serialized)
    struct MetaserverFailoverTests {
        @Test func anUploadBegunThroughOneMetaserverFinishesThroughAnother() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster()
            for i in 1...3 { _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs\(i)") }
            // Two metaservers on one data directory: one SQLite database, as on one host.
            let metaPorts = [ClusterHarness.freePort(), ClusterHarness.freePort()]
            var metas: [Process] = []
            for (i, port) in metaPorts.enumerated() {
                metas.append(try cluster.start("meta\(i + 1)", ["metaserver", "--listen", "127.0.0.1:\(port)", "--data", cluster.root + "/meta", "--master", masterURL]))
            }
            let port = ClusterHarness.freePort()
            try cluster.start(
                "imageserver",
                ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", metaPorts.map { "http://127.0.0.1:\($0)" }.joined(separator: ",")])
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(port)", secret: nil)
            #expect(await cluster.eventually(within: 30) { (try? await client.send(.GET, "/readyz"))?.status == 200 }, "\(cluster.log("imageserver"))")
            // Both report to the master.
            #expect(await cluster.eventually(within: 10) { (try? await MasterClient(baseURL: masterURL).snapshot())?.metaservers?.count == 2 })

            let whole = [UInt8]((0..<2_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            #expect(try await client.send(.POST, "/v2/fail/app/blobs/uploads/?digest=\(Digest.of(whole))", body: ByteBuffer(bytes: whole)).status == 201)
            // A chunked upload: its first part through the first metaserver…
            let data = [UInt8]((0..<6_000_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) })
            let start = try await client.send(.POST, "/v2/fail/app/blobs/uploads/")
            #expect(start.status == 202)
            let location = try #require(start.headers.first(name: "Location"))
            let first = try await client.send(.PATCH, location, body: ByteBuffer(bytes: data[0..<3_000_000]), headers: [("Content-Range", "0-2999999")])
            #expect(first.status == 202, "\(String(buffer: first.body))")

            // …then that metaserver dies; the rest goes through the other.
            kill(metas[0].processIdentifier, SIGKILL)
            let next = first.headers.first(name: "Location") ?? location
            let second = try await client.send(.PATCH, next, body: ByteBuffer(bytes: data[3_000_000...]), headers: [("Content-Range", "3000000-5999999")])
            #expect(second.status == 202, "\(String(buffer: second.body))\n\(cluster.log("imageserver"))")
            let last = second.headers.first(name: "Location") ?? next
            let finish = try await client.send(.PUT, last + (last.contains("?") ? "&" : "?") + "digest=\(Digest.of(data))")
            #expect(finish.status == 201, "\(String(buffer: finish.body))")

            // Both blobs read back whole, through the surviving metaserver.
            for blob in [whole, data] {
                let pulled = try await client.send(.GET, "/v2/fail/app/blobs/\(Digest.of(blob))")
                #expect(pulled.status == 200 && Digest.of(Array(pulled.body.readableBytesView)) == Digest.of(blob))
            }
            #expect(try await client.send(.GET, "/readyz").status == 200)
            // The master shows which one is gone.
            let down = await cluster.eventually(within: 6) {
                let metas = (try? await MasterClient(baseURL: masterURL).snapshot())?.metaservers ?? []
                return metas.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.down, .up]
            }
            #expect(down)
        }
    }
}

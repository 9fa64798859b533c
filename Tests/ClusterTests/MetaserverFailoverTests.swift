import Foundation
import NIOCore
import NIOHTTP1
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Several metaservers on one database, and imageservers that name them all.
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

        /// Pushes blobs of `size` bytes through `registry` until `deadline`; each blob's digest
        /// with the status its push got, and when.
        static func pushLoad(
            _ registry: String, seed: UInt8, size: Int, until deadline: ContinuousClock.Instant
        ) async -> [(repository: String, digest: Digest, status: UInt, at: ContinuousClock.Instant)] {
            let client = ServiceClient(baseURL: registry, timeout: .seconds(20), secret: nil)
            var outcomes: [(String, Digest, UInt, ContinuousClock.Instant)] = []
            var n = 0
            while ContinuousClock.now < deadline, n < 2000 {
                n += 1
                let blob = [UInt8]((0..<size).map { UInt8(truncatingIfNeeded: $0 &* Int(seed) &+ n &* 31 &+ ($0 >> 9)) })
                let digest = Digest.of(blob)
                let reply = try? await client.send(.POST, "/v2/load/s\(seed)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: blob))
                outcomes.append(("load/s\(seed)", digest, UInt(reply?.status ?? 0), .now))
            }
            return outcomes
        }

        @Test func aMetaserverKilledUnderPushLoadThroughTwoImageserversLosesNothing() async throws {
            let database = try PostgresTestServer.freshDatabase()
            let server = try #require(PostgresTestServer.shared)
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster()
            for i in 1...3 { _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs\(i)") }
            // Two metaservers on one PostgreSQL database; the password only in their environment.
            let metaPorts = [ClusterHarness.freePort(), ClusterHarness.freePort()]
            var metas: [Process] = []
            for (i, port) in metaPorts.enumerated() {
                metas.append(
                    try cluster.start(
                        "meta\(i + 1)",
                        ["metaserver", "--listen", "127.0.0.1:\(port)", "--database", database.replacingOccurrences(of: ":\(server.password)@", with: "@"), "--master", masterURL],
                        environment: ["PGPASSWORD": server.password]))
            }
            // Two imageservers, each preferring a different metaserver first.
            let metaURLs = metaPorts.map { "http://127.0.0.1:\($0)" }
            var registries: [String] = []
            for (i, order) in [metaURLs, metaURLs.reversed()].enumerated() {
                let port = ClusterHarness.freePort()
                try cluster.start("imageserver\(i + 1)", ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", order.joined(separator: ",")])
                registries.append("http://127.0.0.1:\(port)")
            }
            for registry in registries {
                let ready = await cluster.eventually(within: 30) { (try? await ServiceClient(baseURL: registry, secret: nil).send(.GET, "/readyz"))?.status == 200 }
                #expect(ready, "\(cluster.log("meta1"))\n\(cluster.log("imageserver1"))")
            }
            #expect(await cluster.eventually(within: 10) { (try? await MasterClient(baseURL: masterURL).snapshot())?.metaservers?.count == 2 })
            #expect(await cluster.eventually(within: 10) {
                (try? await MasterClient(baseURL: masterURL).snapshot())?.groups.first.map { $0.state == .healthy && $0.members.count == 3 } ?? false
            })
            try await Task.sleep(for: .milliseconds(1200))

            // Push through both imageservers for 8 s; kill -9 the first metaserver 3 s in.
            let deadline = ContinuousClock.now + .seconds(8)
            let (first, second) = (registries[0], registries[1])
            async let one = Self.pushLoad(first, seed: 3, size: 300_000, until: deadline)
            async let two = Self.pushLoad(second, seed: 5, size: 300_000, until: deadline)
            try await Task.sleep(for: .seconds(3))
            let killedAt = ContinuousClock.now
            kill(metas[0].processIdentifier, SIGKILL)
            let outcomes = await one + two

            let acknowledged = outcomes.filter { $0.status == 201 }
            let refused = outcomes.filter { $0.status != 201 }
            let afterKill = acknowledged.filter { $0.at > killedAt + .seconds(1) }
            print("metaserver failover under load: \(outcomes.count) pushes, \(acknowledged.count) acknowledged, \(afterKill.count) more than 1 s after the kill, refused: \(refused.map(\.status))")
            #expect(acknowledged.count > 20)
            // Pushes go on through the surviving metaserver; a refusal is a clear 5xx, never a 4xx.
            #expect(afterKill.count > 5, "\(cluster.log("imageserver1"))")
            #expect(refused.allSatisfy { $0.status >= 500 }, "\(refused.map(\.status))")
            // Every acknowledged blob pulls whole, through either imageserver.
            var lost: [Digest] = []
            for (n, push) in acknowledged.enumerated() {
                let client = ServiceClient(baseURL: registries[n % 2], timeout: .seconds(20), secret: nil)
                let pulled = try await client.send(.GET, "/v2/\(push.repository)/blobs/\(push.digest)")
                if pulled.status != 200 || Digest.of(Array(pulled.body.readableBytesView)) != push.digest { lost.append(push.digest) }
            }
            #expect(lost.isEmpty, "acknowledged but not pulled back: \(lost)")
        }
    }
}

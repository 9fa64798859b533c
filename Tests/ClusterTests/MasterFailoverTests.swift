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
    /// Two chunkmasters on one PostgreSQL database, one leading, and every other role naming both.
    @Suite("Master failover", .serialized)
    struct MasterFailoverTests {
        /// Two masters on `database`, the password only in their environment; their URLs and processes.
        static func startTwoMasters(_ cluster: ClusterHarness, database: String, password: String) throws -> (urls: [String], processes: [Process]) {
            let ports = [ClusterHarness.freePort(), ClusterHarness.freePort()]
            let processes = try ports.enumerated().map { i, port in
                try cluster.start(
                    "master\(i + 1)",
                    [
                        "chunkmaster", "--listen", "127.0.0.1:\(port)", "--down-after", "1.5", "--allow-same-zone",
                        "--database", database.replacingOccurrences(of: ":\(password)@", with: "@"),
                    ], environment: ["PGPASSWORD": password])
            }
            return (ports.map { "http://127.0.0.1:\($0)" }, processes)
        }

        /// Which of `urls` is ready (leads), when exactly one is.
        static func leader(of urls: [String]) async -> Int? {
            var leading: [Int] = []
            for (i, url) in urls.enumerated() where (try? await ServiceClient(baseURL: url, timeout: .seconds(1), transport: .plain).send(.GET, "/readyz"))?.status == 200 {
                leading.append(i)
            }
            return leading.count == 1 ? leading[0] : nil
        }

        /// Every chunk every blob names, as `group/fileId`, through the metaserver at `meta`.
        static func chunkKeys(meta: String) async throws -> [String] {
            let client = MetaClient(baseURL: meta, transport: ClusterHarness.transport)
            var keys: [String] = []
            var after: String?
            repeat {
                let page = try await client.blobs(after: after, limit: 500)
                keys += page.blobs.flatMap { $0.chunks.map { "\($0.group)/\($0.fileId)" } }
                after = page.nextAfter
            } while after != nil
            return keys
        }

        @Test func theLeaderKilledUnderPushLoadIsReplacedWithin5sAndNoFileIdIsIssuedTwice() async throws {
            let database = try await PostgresTestServer.freshDatabase()
            let server = try #require(await PostgresTestServer.sharedServer())
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masters, processes) = try Self.startTwoMasters(cluster, database: database, password: server.password)
            let masterList = masters.joined(separator: ",")
            for i in 1...3 { _ = try cluster.startChunkserver(master: masterList, group: 1, name: "cs\(i)") }
            let metaPort = ClusterHarness.freePort()
            let meta = "http://127.0.0.1:\(metaPort)"
            // The metaserver on the masters' database too: its load slows the new leader's first saves.
            try cluster.start(
                "meta",
                [
                    "metaserver", "--listen", "127.0.0.1:\(metaPort)", "--master", masterList,
                    "--database", database.replacingOccurrences(of: ":\(server.password)@", with: "@"),
                ], environment: ["PGPASSWORD": server.password])
            var registries: [String] = []
            for i in 1...2 {
                let port = ClusterHarness.freePort()
                // 64 KiB chunks: every 300 KB blob of the load is five chunks, each read on its own.
                try cluster.start(
                    "imageserver\(i)", ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterList, "--meta", meta, "--chunk-size", "64K"])
                registries.append("http://127.0.0.1:\(port)")
            }
            let logs = { cluster.roleLogs(["master1", "master2", "cs1", "imageserver1"]) }

            // One leads; the other stands by and sends clients to it.
            #expect(await cluster.eventually(within: 15) { await Self.leader(of: masters) != nil }, "\(logs())")
            let first = try #require(await Self.leader(of: masters))
            let standby = ServiceClient(baseURL: masters[1 - first], transport: ClusterHarness.transport)
            let refused = try await standby.send(.GET, "/v1/cluster")
            #expect(refused.status == 503 && String(buffer: refused.body).contains("NOT_LEADER"))
            #expect(refused.headers.first(name: SpeedyHeader.leader) == masters[first])
            // However the path is spelled: the router skips empty pieces, and so does the check.
            let sneaky = try await standby.send(.POST, "//v1//groups", body: ByteBuffer(string: #"{"id": 9}"#), headers: [("Content-Type", "application/json")])
            #expect(sneaky.status == 503, "\(String(buffer: sneaky.body))")
            for registry in registries {
                let ready = await cluster.eventually(within: 30) { (try? await ServiceClient(baseURL: registry, transport: .plain).send(.GET, "/readyz"))?.status == 200 }
                #expect(ready, "\(logs())")
            }
            try await MetaserverFailoverTests.waitForWholeGroup(cluster, master: masterList)

            // Push through both imageservers for 12 s; kill -9 the leader 3 s in.
            let deadline = ContinuousClock.now + .seconds(12)
            let (firstRegistry, secondRegistry) = (registries[0], registries[1])
            async let one = MetaserverFailoverTests.pushLoad(firstRegistry, seed: 3, size: 300_000, until: deadline)
            async let two = MetaserverFailoverTests.pushLoad(secondRegistry, seed: 5, size: 300_000, until: deadline)
            try await Task.sleep(for: .seconds(3))
            let killedAt = ContinuousClock.now
            kill(processes[first].processIdentifier, SIGKILL)
            let tookOver = await cluster.eventually(within: 8) { await Self.leader(of: [masters[1 - first]]) == 0 }
            let takeover = ContinuousClock.now - killedAt
            let outcomes = await one + two

            let acknowledged = outcomes.filter { $0.status == 201 }
            let failed = outcomes.filter { $0.status != 201 }
            let afterTakeover = acknowledged.filter { $0.at > killedAt + takeover }
            print(
                "master failover under load: the standby led \(takeover) after the kill; \(outcomes.count) pushes, \(acknowledged.count) acknowledged, "
                    + "\(afterTakeover.count) after the takeover, refused: \(failed.map(\.status))")
            #expect(tookOver && takeover < .seconds(5), "\(takeover)\n\(logs())")
            #expect(afterTakeover.count > 5, "pushes must resume under the new leader\n\(logs())")
            // Pushes wait out the takeover (for a map, for file ids): at most those under way at
            // the kill, one per client, may fail.
            #expect(failed.count <= 2 && failed.allSatisfy { $0.status >= 500 }, "\(failed.map(\.status))\n\(logs())")

            // Every acknowledged blob pulls whole, and no chunk id was handed out twice.
            let lost = try await MetaserverFailoverTests.lostBlobs(acknowledged, through: registries)
            #expect(lost.isEmpty, "acknowledged but not pulled back: \(lost)")
            let keys = try await Self.chunkKeys(meta: meta)
            #expect(keys.count >= acknowledged.count)
            #expect(Set(keys).count == keys.count, "a file id was issued twice")

            // The new leader logged its term; tools naming both masters find it.
            let events = try await MasterClient(baseURL: masterList, transport: ClusterHarness.transport).events(limit: 1000)
            let terms = events.filter { $0.kind == "master-leader" }.map(\.message)
            #expect(terms.count == 2 && terms.last?.contains(masters[1 - first]) == true, "\(terms)")
            let status = try await cluster.chunktool(["status", "--json"], environment: ["SPEEDY_MASTER": masterList])
            #expect(status.status == 0, "\(status.output)")

            // The old leader, restarted, stands by.
            let port = try #require(URL(string: masters[first])?.port)
            try cluster.start(
                "master\(first + 1)-again",
                [
                    "chunkmaster", "--listen", "127.0.0.1:\(port)", "--down-after", "1.5", "--allow-same-zone",
                    "--database", database.replacingOccurrences(of: ":\(server.password)@", with: "@"),
                ],
                environment: ["PGPASSWORD": server.password])
            let answers = await cluster.eventually(within: 10) {
                (try? await ServiceClient(baseURL: masters[first], transport: .plain).send(.GET, "/readyz"))?.status == 503
            }
            #expect(answers)
            #expect(await Self.leader(of: masters) == 1 - first)
        }
    }
}

import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing

extension ProcessSuites {
    /// Chunk reads for the imageserver go from the chunkserver's volume file to the socket
    /// unchecked (`sendfile`); the imageserver checks every chunk, reads a bad one from another
    /// member, and has the member check its copy, which reports it damaged (issue 24).
    @Suite("Unchecked chunk reads", .serialized)
    struct UncheckedReadTests {
        @Test func aCopyRottenOnDiskIsCaughtByTheImageserverAndReportedByItsMember() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // A scrub pass an hour apart: only a read can find the damage within this test.
            let registry = try await cluster.startRegistry(chunkserverArguments: ["--scrub-rate", "64M", "--scrub-every", "1h"], masterArguments: [])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let digest = try #require(await RecoveryTests().push(client, 5))
            let record = try #require(try VolumeRecords.scan(cluster.root + "/cs1/volume-000001.dat").first)
            let key = ChunkKey(group: 1, fileId: record.fileId)
            let cs1 = ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport)
            let good = try await cs1.getChecked(key, serverChecks: false)
            #expect(good.data.readableBytes == Int(record.length))
            // A verify read checks the copy and sends its CRC, not its bytes.
            let verified = try await cs1.service.send(.GET, "/v1/chunks/1/\(record.fileId)", headers: [(SpeedyHeader.read, SpeedyHeader.readVerify)])
            #expect(verified.status == 200 && verified.body.readableBytes == 0)
            #expect(verified.headers.first(name: SpeedyHeader.crc32c) == CRCFormat.hex(good.crc))
            // The unchecked read was counted once its bytes were out.
            let stats = try await cs1.stats()
            #expect(stats.readBytes >= UInt64(record.length), "\(stats)")

            try SelfHealingTests.damage(cluster, server: "cs1", at: record.payloadOffset + 10)
            // Unchecked, the member sends what its file holds under the recorded CRC: the client's
            // check is what catches it.
            do {
                _ = try await cs1.getChecked(key, serverChecks: false)
                Issue.record("a damaged copy passed the client's check")
            } catch {
                #expect("\(error)".contains("CRC mismatch in transit"), "\(error)")
            }

            // Every pull comes back whole; the imageserver reads the damaged copy at some point,
            // and the member, asked to check, reports it.
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            var pulls = 0
            let reported = await cluster.eventually(within: 30) {
                pulls += 1
                #expect(await RecoveryTests().pull(client, digest) == nil)
                let events = (try? await master.events(after: 0, limit: 1000)) ?? []
                return events.contains { $0.kind == "chunk-damaged" && $0.serverId == "cs1" && $0.message.hasPrefix("chunk 1/\(record.fileId) damaged") }
            }
            #expect(reported, "after \(pulls) pulls\n\(cluster.roleLogs(["imageserver", "cs1"]))")
            // The imageserver logs once the member has answered, which may come after its report.
            #expect(await cluster.eventually(within: 10) { cluster.log("imageserver").contains("its copy is damaged, reported for repair") })
            // Checked, the member refuses to send it.
            #expect(try await cs1.verify(key) == false)
            #expect(try await ChunkServerClient(baseURL: registry.chunkservers[1].addr, transport: ClusterHarness.transport).verify(key))
        }
    }
}

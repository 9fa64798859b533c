import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import Testing

extension ProcessSuites {
    /// `chunktool verify` against real chunkservers with planted damage.
    @Suite("chunktool verify", .serialized)
    struct VerifyTests {
        @Test func verifyReportsExactlyTheMissingExtraAndCorruptChunks() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster()
            var servers: [String] = []
            for i in 1...3 { servers.append(try cluster.startChunkserver(master: masterURL, group: 1, name: "cs\(i)").addr) }
            let master = MasterClient(baseURL: masterURL, transport: ClusterHarness.transport)
            #expect(await cluster.eventually(within: 20) { (try? await master.snapshot())?.groups.first.map { $0.state == .healthy && $0.members.filter { $0.status == .readWrite }.count == 3 } ?? false })
            for id in 1...5 as ClosedRange<UInt64> {
                for addr in servers {
                    _ = try await ChunkServerClient(baseURL: addr, transport: ClusterHarness.transport).put(ChunkKey(group: 1, fileId: id), data: ByteBuffer(repeating: UInt8(id), count: 4096))
                }
            }
            let clean = try cluster.chunktool(["verify", "--group", "1", "--master", masterURL])
            #expect(clean.status == 0, "\(clean.output)")
            #expect(clean.output.contains("5 chunks, 0 missing, 0 extra, 0 corrupt - clean"))

            // Plant: chunk 2 gone from cs1, chunk 6 only on cs3, chunk 3's bytes damaged on cs2.
            try await ChunkServerClient(baseURL: servers[0], transport: ClusterHarness.transport).delete(ChunkKey(group: 1, fileId: 2))
            _ = try await ChunkServerClient(baseURL: servers[2], transport: ClusterHarness.transport).put(ChunkKey(group: 1, fileId: 6), data: ByteBuffer(repeating: 6, count: 4096))
            let record = RecordSize.of(4096)
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: cluster.root + "/cs2/volume-000001.dat"))
            try handle.seek(toOffset: UInt64(2 * record + 32 + 100))
            try handle.write(contentsOf: Data([0xFF, 0x00, 0xFF]))
            try handle.close()

            let damaged = try cluster.chunktool(["verify", "--group", "1", "--json", "--master", masterURL])
            #expect(damaged.status == 1)
            let report = try JSONSerialization.jsonObject(with: Data(damaged.output.utf8)) as? [String: Any]
            let members = (report?["members"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) { $0[$1["id"] as? String ?? ""] = $1 }
            #expect(members["cs1"]?["missing"] as? [Int] == [2])
            #expect(members["cs2"]?["corrupt"] as? [Int] == [3])
            #expect(members["cs3"]?["extra"] as? [Int] == [6])
            #expect(members["cs2"]?["missing"] as? [Int] == [])
            #expect(report?["clean"] as? Bool == false)
            #expect(try cluster.chunktool(["verify", "--group", "9", "--master", masterURL]).status == 2)

            // repair --dry-run says what it would copy and changes nothing.
            let plan = try cluster.chunktool(["repair", "--group", "1", "--dry-run", "--master", masterURL])
            #expect(plan.status == 1)
            #expect(plan.output.contains("would copy chunk 2 (missing on cs1)"))
            #expect(plan.output.contains("would copy chunk 3 (corrupt on cs2)"))
            #expect(try cluster.chunktool(["verify", "--group", "1", "--master", masterURL]).status == 1)

            // repair copies good copies over; verify then finds only the extra chunk (left for GC);
            // a second repair has nothing to do.
            let repaired = try cluster.chunktool(["repair", "--group", "1", "--master", masterURL])
            #expect(repaired.status == 0, "\(repaired.output)")
            #expect(repaired.output.contains("copied chunk 2"))
            #expect(repaired.output.contains("copied chunk 3"))
            #expect(try await ChunkServerClient(baseURL: servers[1], transport: ClusterHarness.transport).get(ChunkKey(group: 1, fileId: 3)) == ByteBuffer(repeating: 3, count: 4096))
            #expect(try await ChunkServerClient(baseURL: servers[0], transport: ClusterHarness.transport).get(ChunkKey(group: 1, fileId: 2)) == ByteBuffer(repeating: 2, count: 4096))
            let again = try cluster.chunktool(["repair", "--group", "1", "--master", masterURL])
            #expect(again.status == 0)
            #expect(again.output.contains("nothing to repair"))
            let after = try cluster.chunktool(["verify", "--group", "1", "--json", "--master", masterURL])
            let final = try JSONSerialization.jsonObject(with: Data(after.output.utf8)) as? [String: Any]
            #expect(final?["missing"] as? Int == 0)
            #expect(final?["corrupt"] as? Int == 0)
            #expect(final?["extra"] as? Int == 1)
        }
    }
}

/// Bytes a record with a payload of `n` bytes takes in a volume (docs/storage-format.md).
enum RecordSize {
    static func of(_ n: Int) -> Int { (32 + n + 7) / 8 * 8 }
}

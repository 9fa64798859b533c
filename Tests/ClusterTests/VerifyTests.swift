import Foundation
import NIOCore
import NIOHTTP1
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
            let clean = try await cluster.chunktool(["verify", "--group", "1", "--master", masterURL])
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

            let damaged = try await cluster.chunktool(["verify", "--group", "1", "--json", "--master", masterURL])
            #expect(damaged.status == 1)
            let report = try JSONSerialization.jsonObject(with: Data(damaged.output.utf8)) as? [String: Any]
            let members = (report?["members"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) { $0[$1["id"] as? String ?? ""] = $1 }
            #expect(members["cs1"]?["missing"] as? [Int] == [2])
            #expect(members["cs2"]?["corrupt"] as? [Int] == [3])
            #expect(members["cs3"]?["extra"] as? [Int] == [6])
            #expect(members["cs2"]?["missing"] as? [Int] == [])
            #expect(report?["clean"] as? Bool == false)
            #expect(try await cluster.chunktool(["verify", "--group", "9", "--master", masterURL]).status == 2)

            // repair --dry-run says what it would copy and changes nothing.
            let plan = try await cluster.chunktool(["repair", "--group", "1", "--dry-run", "--master", masterURL])
            #expect(plan.status == 1)
            #expect(plan.output.contains("would copy chunk 2 (missing on cs1)"))
            #expect(plan.output.contains("would copy chunk 3 (corrupt on cs2)"))
            #expect(try await cluster.chunktool(["verify", "--group", "1", "--master", masterURL]).status == 1)

            // repair copies good copies over; verify then finds only the extra chunk (left for GC);
            // a second repair has nothing to do.
            let repaired = try await cluster.chunktool(["repair", "--group", "1", "--master", masterURL])
            #expect(repaired.status == 0, "\(repaired.output)")
            #expect(repaired.output.contains("copied chunk 2"))
            #expect(repaired.output.contains("copied chunk 3"))
            #expect(try await ChunkServerClient(baseURL: servers[1], transport: ClusterHarness.transport).get(ChunkKey(group: 1, fileId: 3)) == ByteBuffer(repeating: 3, count: 4096))
            #expect(try await ChunkServerClient(baseURL: servers[0], transport: ClusterHarness.transport).get(ChunkKey(group: 1, fileId: 2)) == ByteBuffer(repeating: 2, count: 4096))
            let again = try await cluster.chunktool(["repair", "--group", "1", "--master", masterURL])
            #expect(again.status == 0)
            #expect(again.output.contains("nothing to repair"))
            let after = try await cluster.chunktool(["verify", "--group", "1", "--json", "--master", masterURL])
            let final = try JSONSerialization.jsonObject(with: Data(after.output.utf8)) as? [String: Any]
            #expect(final?["missing"] as? Int == 0)
            #expect(final?["corrupt"] as? Int == 0)
            #expect(final?["extra"] as? Int == 1)
        }

        @Test func quickVerifyFindsWhatDiffersInFewRequests() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--chunk-size", "64K"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: ClusterHarness.transport)
            // 8 blobs of 5 MB and a bit, in 64 KiB chunks: some 620 chunks on each member.
            for n in 1...8 {
                let data = RecoveryTests.payload(n)
                let pushed = try await client.send(.POST, "/v2/load/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data))
                #expect(pushed.status == 201)
            }
            let members = registry.chunkservers.map { ChunkServerClient(baseURL: $0.1, transport: ClusterHarness.transport) }
            let ids = try await members[0].listAll(group: 1).keys.sorted()
            #expect(ids.count > 600)

            // Identical members: one digest request each.
            let clean = try await cluster.chunktool(["verify", "--quick", "--group", "1", "--json", "--master", registry.masterURL])
            #expect(clean.status == 0, "\(clean.output)")
            let first = try JSONSerialization.jsonObject(with: Data(clean.output.utf8)) as? [String: Any]
            #expect(first?["requests"] as? Int == 3)
            #expect(first?["chunksChecked"] as? Int == ids.count)
            #expect(first?["clean"] as? Bool == true)

            // Plant: two chunks gone from cs1, one chunk only on cs3.
            let deleted = [ids[40], ids[ids.count - 100]]
            for id in deleted { try await members[0].delete(ChunkKey(group: 1, fileId: id)) }
            let extra = ids.last! + 1000
            _ = try await members[2].put(ChunkKey(group: 1, fileId: extra), data: ByteBuffer(repeating: 9, count: 4096))

            let found = try await cluster.chunktool(["verify", "--quick", "--group", "1", "--json", "--master", registry.masterURL])
            #expect(found.status == 1, "\(found.output)")
            let report = try JSONSerialization.jsonObject(with: Data(found.output.utf8)) as? [String: Any]
            let byId = (report?["members"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) { $0[$1["id"] as? String ?? ""] = $1 }
            #expect(byId["cs1"]?["missing"] as? [Int] == deleted.map { Int($0) })
            #expect(byId["cs3"]?["extra"] as? [Int] == [Int(extra)])
            for (id, member) in byId {
                if id != "cs1" { #expect(member["missing"] as? [Int] == [], "\(id)") }
                if id != "cs3" { #expect(member["extra"] as? [Int] == [], "\(id)") }
                #expect(member["crcDiffers"] as? [Int] == [], "\(id)")
            }
            #expect(report?["missing"] as? Int == 2)
            #expect(report?["extra"] as? Int == 1)
            // A difference costs at most a request per member per level (eight levels: 256-way cuts
            // of the empty top of the id space, then 16-way ones down to ranges of 256 ids), then a
            // listing of its range on each member and one more to confirm it: at most
            // 3 · (3 · 8 + 3 + 3) = 90 requests for three differences (fewer, as they share the upper
            // levels), however many chunks agree. A quarter of the ~620 chunks leaves room to spare.
            let requests = report?["requests"] as? Int ?? .max
            #expect(requests > 3 && requests < ids.count / 4, "\(requests) requests for \(ids.count) chunks")

            let text = try await cluster.chunktool(["verify", "--quick", "--group", "1", "--master", registry.masterURL])
            #expect(text.status == 1)
            #expect(text.output.contains("2 missing, 1 extra, 0 corrupt"), "\(text.output)")
            #expect(text.output.contains("compared range by range in"), "\(text.output)")
            #expect(try await cluster.chunktool(["verify", "--quick", "--rate", "5", "--group", "1", "--master", registry.masterURL]).status == 2)
        }
    }
}

/// Bytes a record with a payload of `n` bytes takes in a volume (docs/storage-format.md).
enum RecordSize {
    static func of(_ n: Int) -> Int { (32 + n + 7) / 8 * 8 }
}

import ServerSupport
import ChunkMaster
import Foundation
import Logging
import SpeedyCore
import Testing
import SpeedyTestSupport

@Suite("Master persistence")
struct MasterPersistenceTests {

    @Test func leasesNeverRepeatAcrossRestarts() async throws {
        let temporary = try TemporaryDirectory("master")
        defer { temporary.remove() }
        let dir = temporary.path
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        for _ in 0..<3 {
            // Each round is a master process: a new database handle and allocator on the same file.
            let allocator = FileIdAllocator(store: try SQLiteMasterStore(path: dir + "/master.sqlite"), block: 1000)
            for count in [1, 500, 999, 2500] as [UInt64] {
                let lease = try await allocator.lease(count: count)
                #expect(lease.count == count)
                #expect(lease.start > highest || highest == 0)
                for id in lease.range { #expect(seen.insert(id).inserted) }
                highest = lease.range.upperBound - 1
            }
        }
    }

    @Test func concurrentLeasesAreDisjoint() async throws {
        let temporary = try TemporaryDirectory("master")
        defer { temporary.remove() }
        let dir = temporary.path
        let allocator = FileIdAllocator(store: try SQLiteMasterStore(path: dir + "/master.sqlite"), block: 10)
        let leases = try await withThrowingTaskGroup(of: FileIdLease.self) { group in
            for _ in 0..<50 { group.addTask { try await allocator.lease(count: 7) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let ids = leases.flatMap { Array($0.range) }
        #expect(ids.count == 350)
        #expect(Set(ids).count == 350)
        let restarted = FileIdAllocator(store: try SQLiteMasterStore(path: dir + "/master.sqlite"), block: 10)
        #expect(try await restarted.lease(count: 1).start > ids.max()!)
    }

    @Test func masterRemembersServersAndEventsAcrossRestart() async throws {
        let temporary = try TemporaryDirectory("master")
        defer { temporary.remove() }
        let dir = temporary.path
        var configuration = ChunkMasterConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), dataDirectory: dir, security: .insecure)
        configuration.allowSameZone = true  // every report is from 127.0.0.1
        let master = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        for id in ["a", "bb", "ccc"] { _ = try await master.heartbeat(report(id, group: 4)) }
        #expect(master.snapshot().groups.first?.state == .healthy)

        let restarted = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        let snapshot = restarted.snapshot()
        #expect(snapshot.groups.map(\.id) == [4])
        #expect(snapshot.groups[0].members.map(\.status) == [.down, .down, .down])
        let events = try await SQLiteMasterStore(path: dir + "/master.sqlite").events(after: 0, limit: 100)
        #expect(events.filter { $0.kind == "server-joined" }.compactMap(\.serverId).sorted() == ["a", "bb", "ccc"])
        #expect(events.contains { $0.kind == "group-state" && $0.group == 4 })
    }
}

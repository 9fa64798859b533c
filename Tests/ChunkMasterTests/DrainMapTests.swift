import ChunkMaster
import SpeedyCore
import Testing

/// A group's drain in the cluster map: the flag, what the snapshot shows, and removing a drained
/// group with its members once they hold nothing.
@Suite("Draining groups")
struct DrainMapTests {
    /// Groups 1 and 2 of three members each; group 2's `b2` holds no chunk.
    func twoGroups() -> ClusterMap {
        var map = ClusterMap()
        for id in ["a1", "b1", "c1"] { _ = map.apply(report(id), nowMs: 0) }
        // b2 joins first: an empty newcomer to a group holding chunks would be filled first.
        _ = map.apply(emptyReport("b2", group: 2), nowMs: 0)
        for id in ["a2", "c2"] { _ = map.apply(report(id, group: 2), nowMs: 0) }
        return map
    }

    @Test func aDrainShowsInTheSnapshotAndSettingItTwiceKeepsTheFirstTime() throws {
        var map = twoGroups()
        #expect(try map.setDraining(2, sinceMs: 1000) == [.drainSet(group: 2, sinceMs: 1000)])
        #expect(try map.setDraining(2, sinceMs: 5000) == [])
        let groups = map.snapshot(master: "m", nowMs: 0, wallClockMs: 6000).groups
        #expect(groups.first { $0.id == 2 }?.draining == true)
        #expect(groups.first { $0.id == 2 }?.drainingSinceMs == 1000)
        #expect(groups.first { $0.id == 1 }?.draining == nil)
        // Still healthy: a draining group serves reads; only new chunks go elsewhere.
        #expect(groups.first { $0.id == 2 }?.state == .healthy)
        #expect(try map.setDraining(2, sinceMs: nil) == [.drainSet(group: 2, sinceMs: nil)])
        #expect(try map.setDraining(2, sinceMs: nil) == [])
        #expect(map.snapshot(master: "m", nowMs: 0, wallClockMs: 6000).groups.first { $0.id == 2 }?.draining == nil)
        #expect(throws: ClusterMap.AdminError.unknownGroup(9)) { try map.setDraining(9, sinceMs: 1) }
        #expect(throws: ClusterMap.AdminError.unknownGroup(0)) { try map.setDraining(0, sinceMs: 1) }
    }

    @Test func aDrainedGroupGoesWithItsMembersOnceNoneThatServesHoldsAChunk() throws {
        var map = twoGroups()
        #expect(throws: ClusterMap.AdminError.groupNotEmpty(2, members: 3)) { try map.removeGroup(2) }
        _ = try map.setDraining(2, sinceMs: 1000)
        #expect(throws: ClusterMap.AdminError.drainedGroupHoldsChunks(2, servers: ["a2", "c2"])) { try map.removeGroup(2) }
        // Collected: a2 lists nothing; c2 is down (its disk goes with it).
        _ = map.apply(emptyReport("a2", group: 2), nowMs: 10_000)
        _ = map.apply(emptyReport("b2", group: 2), nowMs: 10_000)
        _ = map.expire(nowMs: 10_000, downAfterMs: 3000)
        let changes = try map.removeGroup(2)
        #expect(changes == [.serverRetired(id: "a2", group: 2), .serverRetired(id: "b2", group: 2), .serverRetired(id: "c2", group: 2), .groupRemoved(group: 2)])
        #expect(map.isRetired("a2") && map.isRetired("c2"))
        #expect(map.draining[2] == nil)
        #expect(map.snapshot(master: "m", nowMs: 10_000, wallClockMs: 0).groups.map(\.id) == [1])
        // Group 1 never drained keeps refusing while it has members.
        #expect(throws: ClusterMap.AdminError.groupNotEmpty(1, members: 3)) { try map.removeGroup(1) }
    }

    @Test func aRestoredGroupKeepsItsDrain() {
        var map = ClusterMap()
        map.restore(group: 3, drainingSinceMs: 42)
        map.restore(group: 4)
        #expect(map.draining == [3: 42])
        #expect(map.snapshot(master: "m", nowMs: 0, wallClockMs: 0).groups.first { $0.id == 3 }?.drainingSinceMs == 42)
    }
}

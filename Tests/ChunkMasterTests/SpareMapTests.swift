import ChunkMaster
import SpeedyCore
import Testing

/// Spares in the cluster map: where they wait, when one replaces a member that stays down,
/// and what each step changes and saves.
@Suite("Spares in the cluster map")
struct SpareMapTests {
    /// A spare's heartbeat: group 0 while it waits, or `group` once it took the one it was given.
    func spareReport(_ id: String, group: UInt32 = 0, free: UInt64 = 750, chunks: UInt64 = 0) -> HeartbeatReport {
        var r = report(id, group: group)
        r.spare = true
        r.diskFreeBytes = free
        r.chunkCount = chunks
        return r
    }

    /// Group 1 of a, bb, ccc, and spares s1 (less free space) and s2, seen at time 0.
    func cluster() -> ClusterMap {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        _ = map.apply(spareReport("s1", free: 500), nowMs: 0)
        _ = map.apply(spareReport("s2", free: 900), nowMs: 0)
        return map
    }

    @Test func sparesWaitOutsideEveryGroup() {
        let map = cluster()
        let snapshot = map.snapshot(master: "m", nowMs: 100, wallClockMs: 0)
        #expect(snapshot.groups.map(\.id) == [1])
        #expect(snapshot.groups[0].members.map(\.id) == ["a", "bb", "ccc"])
        #expect(snapshot.spares?.map(\.id) == ["s1", "s2"])
        #expect(snapshot.spares?.allSatisfy { $0.spare == true } == true)
        #expect(map.groupStates[0] == nil)
    }

    @Test func aMemberDownLongerThanTheDelayGetsTheSpareWithTheMostRoom() throws {
        var map = cluster()
        // bb stops; the others go on.
        for t in stride(from: Int64(500), through: 5000, by: 500) {
            for id in ["a", "ccc"] { _ = map.apply(report(id), nowMs: t) }
            _ = map.apply(spareReport("s1", free: 500), nowMs: t)
            _ = map.apply(spareReport("s2", free: 900), nowMs: t)
            _ = map.expire(nowMs: t, downAfterMs: 1500)
        }
        #expect(map.replacementsDue(afterMs: 10_000, nowMs: 5000, allowSameZone: true) == [])
        let due = map.replacementsDue(afterMs: 3000, nowMs: 5000, allowSameZone: true)
        #expect(due == [ClusterMap.Replacement(group: 1, dead: "bb", spare: "s2")])

        let changes = try map.assignSpare("s2", to: 1, replacing: "bb")
        #expect(changes.contains(.spareAssigned(id: "s2", group: 1, replacing: "bb")))
        #expect(changes.contains(.fenced(id: "bb", group: 1, by: "s2")))
        #expect(changes.contains(.groupState(group: 1, from: .degraded, to: .recovering)))
        #expect(changes.filter(\.isDurable).count == 2)
        // One replacement at a time per group: none is due while s2 is filled.
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 6000, allowSameZone: true) == [])

        // Until its next heartbeat's reply reaches it, the spare still says group 0: it stays in 1.
        _ = map.apply(spareReport("s2"), nowMs: 5100)
        var snapshot = map.snapshot(master: "m", nowMs: 5100, wallClockMs: 0)
        #expect(snapshot.groups[0].members.first { $0.id == "s2" }?.status == .transferring)
        #expect(snapshot.spares?.map(\.id) == ["s1"])
        _ = map.apply(spareReport("s2", group: 1), nowMs: 5200)
        snapshot = map.snapshot(master: "m", nowMs: 5200, wallClockMs: 0)
        #expect(snapshot.groups[0].members.map(\.id) == ["a", "bb", "ccc", "s2"])
        #expect(snapshot.groups[0].state == .recovering)

        // Given twice, or given a member: refused.
        #expect(throws: ClusterMap.AdminError.notSpare("s2", group: 1)) { try map.assignSpare("s2", to: 1, replacing: "bb") }
        #expect(throws: ClusterMap.AdminError.notSpare("a", group: 1)) { try map.assignSpare("a", to: 1, replacing: "bb") }
    }

    @Test func noSpareNoReplacementAndAReturningMemberIsSimplyUp() {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        for t in stride(from: Int64(500), through: 5000, by: 500) {
            for id in ["a", "ccc"] { _ = map.apply(report(id), nowMs: t) }
            _ = map.expire(nowMs: t, downAfterMs: 1500)
        }
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 5000, allowSameZone: true) == [])
        // A spare joins; bb comes back before the master acts: nothing is due.
        _ = map.apply(spareReport("s1"), nowMs: 5000)
        _ = map.apply(report("bb", uptimeMs: 10), nowMs: 5000)
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 5000, allowSameZone: true) == [])
        #expect(map.state(of: 1) == .healthy)
    }

    @Test func twoDeadMembersGetASpareEach() throws {
        var map = cluster()
        // bb and ccc stop.
        for t in stride(from: Int64(500), through: 5000, by: 500) {
            _ = map.apply(report("a"), nowMs: t)
            _ = map.apply(spareReport("s1", free: 500), nowMs: t)
            _ = map.apply(spareReport("s2", free: 900), nowMs: t)
            _ = map.expire(nowMs: t, downAfterMs: 1500)
        }
        let first = try #require(map.replacementsDue(afterMs: 3000, nowMs: 5000, allowSameZone: true).first)
        #expect(first.spare == "s2")
        _ = try map.assignSpare(first.spare, to: 1, replacing: first.dead)
        // The member s2 replaces is fenced for it; the other, in a group with one RW member left
        // (not writable, so it misses nothing), stays DOWN.
        let members = map.snapshot(master: "m", nowMs: 5000, wallClockMs: 0).groups[0].members
        #expect(members.filter { $0.fencedBy == "s2" }.map(\.id) == [first.dead])
        #expect(members.first { $0.id != first.dead && $0.id != "a" && $0.id != "s2" }?.status == .down)
        _ = map.apply(spareReport("s2", group: 1), nowMs: 5100)
        _ = try map.retire(first.dead)
        _ = try map.setStatus(of: "s2", to: .readWrite)
        // The other one, still fenced and silent, is due next, with the remaining spare.
        let second = map.replacementsDue(afterMs: 3000, nowMs: 5200, allowSameZone: true)
        #expect(second.map(\.spare) == ["s1"])
        #expect(second.map(\.dead) == [first.dead == "bb" ? "ccc" : "bb"])
        let changes = try map.assignSpare("s1", to: 1, replacing: second[0].dead)
        #expect(changes.contains(.fenced(id: second[0].dead, group: 1, by: "s1")))
    }

    @Test func aSpareInTheZoneOfALiveMemberIsNotGivenToItsGroup() throws {
        // a, bb and ccc in zones z1, z2 and z3; s1 (the most room) in z1, s2 in z2.
        func zoned(_ r: HeartbeatReport, _ zone: String) -> HeartbeatReport { var r = r; r.zone = zone; return r }
        var map = ClusterMap()
        let zones = ["a": "z1", "bb": "z2", "ccc": "z3"]
        let spares = [("s1", "z1", UInt64(900)), ("s2", "z2", UInt64(500))]
        // ccc stops.
        for t in stride(from: Int64(0), through: 5000, by: 500) {
            for id in t == 0 ? ["a", "bb", "ccc"] : ["a", "bb"] { _ = map.apply(zoned(report(id), zones[id]!), nowMs: t) }
            for (id, zone, free) in spares { _ = map.apply(zoned(spareReport(id, free: free), zone), nowMs: t) }
            _ = map.expire(nowMs: t, downAfterMs: 1500)
        }
        // s1 and s2 share a zone with a and bb: neither may take ccc's place, unless allowed.
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 5000) == [])
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 5000, allowSameZone: true).map(\.spare) == ["s1"])
        // A spare in ccc's own zone may: ccc is down and holds its zone no more.
        _ = map.apply(zoned(spareReport("s3", free: 100), "z3"), nowMs: 5000)
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 5000) == [ClusterMap.Replacement(group: 1, dead: "ccc", spare: "s3")])
        // A draining group gets no spare.
        _ = try map.setDraining(1, sinceMs: 5000)
        #expect(map.replacementsDue(afterMs: 3000, nowMs: 5000, allowSameZone: true) == [])
    }
}

import ChunkMaster
import SpeedyCore
import Testing

func report(
    _ id: String, group: UInt32 = 1, status: ServerStatus = .readWrite, uptimeMs: UInt64 = 1000,
    readBytes: UInt64 = 0, writeBytes: UInt64 = 0
) -> HeartbeatReport {
    HeartbeatReport(
        serverId: id, group: group, addr: "127.0.0.1:\(7000 + id.count)", status: status,
        diskTotalBytes: 1000, diskUsedBytes: 250, diskFreeBytes: 750, chunkCount: 3, chunkBytes: 200,
        readBytes: readBytes, writeBytes: writeBytes, readOps: 0, writeOps: 0,
        crcErrors: 0, ioErrors: 0, pendingWrites: 0, uptimeMs: uptimeMs)
}

@Suite("Cluster map")
struct ClusterMapTests {
    @Test func groupStateFollowsItsMembers() {
        #expect(GroupState.derive(from: [.readWrite, .readWrite, .readWrite]) == .healthy)
        #expect(GroupState.derive(from: [.readWrite, .down, .readWrite]) == .degraded)
        #expect(GroupState.derive(from: [.readWrite, .readOnly, .readWrite]) == .degraded)
        #expect(GroupState.derive(from: [.readWrite, .error, .readWrite]) == .degraded)
        #expect(GroupState.derive(from: [.readOnly, .readOnly, .readOnly]) == .readOnly)
        #expect(GroupState.derive(from: [.down, .down, .down]) == .down)
        #expect(GroupState.derive(from: [.error, .down]) == .down)
        #expect(GroupState.derive(from: []) == .down)
    }

    @Test func heartbeatsJoinServersAndMakeTheGroupHealthy() {
        var map = ClusterMap()
        #expect(map.apply(report("a"), nowMs: 0) == [
            .serverJoined(id: "a", group: 1, addr: "127.0.0.1:7001"), .groupState(group: 1, from: nil, to: .healthy),
        ])
        _ = map.apply(report("bb"), nowMs: 10)
        _ = map.apply(report("ccc"), nowMs: 20)
        let snapshot = map.snapshot(master: "m", nowMs: 520, wallClockMs: 99)
        #expect(snapshot.groups.count == 1)
        #expect(snapshot.groups[0].state == .healthy)
        #expect(snapshot.groups[0].members.map(\.id) == ["a", "bb", "ccc"])
        #expect(snapshot.groups[0].members.map(\.lastHeartbeatAgeMs) == [520, 510, 500])
        #expect(snapshot.totals.serversUp == 3)
        #expect(snapshot.totals.diskTotalBytes == 3000)
    }

    @Test func silentServerGoesDownAndComesBack() {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        _ = map.apply(report("a", uptimeMs: 4000), nowMs: 3000)
        _ = map.apply(report("bb", uptimeMs: 4000), nowMs: 3000)
        #expect(map.expire(nowMs: 2900, downAfterMs: 3000).isEmpty)
        let changes = map.expire(nowMs: 3100, downAfterMs: 3000)
        #expect(changes == [.serverDown(id: "ccc", group: 1, silentMs: 3100), .groupState(group: 1, from: .healthy, to: .degraded)])
        let member = map.snapshot(master: "m", nowMs: 3100, wallClockMs: 0).groups[0].members[2]
        #expect(member.status == .down)
        #expect(map.apply(report("ccc", uptimeMs: 9000), nowMs: 3200) == [
            .serverUp(id: "ccc", group: 1), .groupState(group: 1, from: .degraded, to: .healthy),
        ])
    }

    @Test func statusChangeIsAnEvent() {
        var map = ClusterMap()
        _ = map.apply(report("a"), nowMs: 0)
        #expect(map.apply(report("a", status: .readOnly, uptimeMs: 2000), nowMs: 1000) == [
            .statusChanged(id: "a", group: 1, from: .readWrite, to: .readOnly), .groupState(group: 1, from: .healthy, to: .readOnly),
        ])
    }

    @Test func ratesComeFromCounterDifferencesAndHistoryIsBounded() {
        var map = ClusterMap()
        _ = map.apply(report("a", uptimeMs: 1000, readBytes: 0, writeBytes: 0), nowMs: 0)
        _ = map.apply(report("a", uptimeMs: 3000, readBytes: 4000, writeBytes: 1000), nowMs: 2000)
        var member = map.snapshot(master: "m", nowMs: 2000, wallClockMs: 0, historySeconds: 10).groups[0].members[0]
        #expect(member.readBytesPerSec == 2000)
        #expect(member.writeBytesPerSec == 500)
        #expect(member.history?.readBytesPerSec == [0, 2000])
        // A restarted server's counters start again from zero: no negative or huge rate.
        _ = map.apply(report("a", uptimeMs: 500, readBytes: 10, writeBytes: 10), nowMs: 3000)
        member = map.snapshot(master: "m", nowMs: 3000, wallClockMs: 0).groups[0].members[0]
        #expect(member.readBytesPerSec == 0)
        for i in 0..<400 { _ = map.apply(report("a", uptimeMs: 1000 + UInt64(i) * 1000), nowMs: 4000 + Int64(i) * 1000) }
        let history = map.snapshot(master: "m", nowMs: 0, wallClockMs: 0, historySeconds: 1000).groups[0].members[0].history
        #expect(history?.readBytesPerSec.count == ClusterMap.historyLength)
    }

    @Test func risingErrorCountersAreEvents() {
        var map = ClusterMap()
        _ = map.apply(report("a"), nowMs: 0)
        var damaged = report("a", uptimeMs: 2000)
        damaged.crcErrors = 2
        #expect(map.apply(damaged, nowMs: 1000) == [.errorsRose(id: "a", group: 1, crcErrors: 2, ioErrors: 0)])
        damaged.uptimeMs = 3000
        #expect(map.apply(damaged, nowMs: 2000).isEmpty)
    }

    @Test func restoredServersAreDownUntilTheyReport() {
        var map = ClusterMap()
        map.restore(id: "a", group: 2, addr: "10.0.0.1:7657")
        let snapshot = map.snapshot(master: "m", nowMs: 0, wallClockMs: 0)
        #expect(snapshot.groups[0].state == .down)
        #expect(snapshot.groups[0].members[0].lastHeartbeatAgeMs == -1)
        #expect(map.apply(report("a", group: 2), nowMs: 5).first == .serverUp(id: "a", group: 2))
    }
}

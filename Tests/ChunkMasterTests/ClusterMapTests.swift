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

/// Failure zones: a group's members in different zones unless the master allows otherwise.
extension ClusterMapTests {
    /// `report(id)` in `zone` (nil: none named), at `host`.
    func zoned(_ id: String, zone: String?, group: UInt32 = 1, host: String = "127.0.0.1") -> HeartbeatReport {
        var r = report(id, group: group)
        r.addr = "\(host):\(7000 + id.count)"
        r.zone = zone
        return r
    }

    /// The map's answer to `report`: nil when taken, else the member in the way; taken reports are applied.
    func offer(_ report: HeartbeatReport, to map: inout ClusterMap, nowMs: Int64 = 0) -> String? {
        do throws(ClusterMap.AdminError) {
            try map.checkZone(of: report)
        } catch {
            guard case .zoneConflict(let server, let group, let zone, let other) = error else { return "\(error)" }
            #expect(server == report.serverId && group == report.group && zone == (report.zone ?? "127.0.0.1"))
            #expect(error.code == .zoneConflict && error.code.status == 409)
            #expect(error.description.contains("group \(group)") && error.description.contains("zone \(zone)") && error.description.contains(other))
            return other
        }
        _ = map.apply(report, nowMs: nowMs)
        return nil
    }

    @Test func aServerJoiningAGroupWhereItsZoneIsTakenIsRefused() {
        var map = ClusterMap()
        #expect(offer(zoned("a", zone: "a"), to: &map) == nil)
        #expect(offer(zoned("bb", zone: "b"), to: &map) == nil)
        #expect(offer(zoned("ccc", zone: "b"), to: &map) == "bb")
        #expect(map.members["ccc"] == nil)
        #expect(map.zoneConflict(for: "ccc", in: 1, zone: "b") == "bb")
        #expect(map.zoneConflict(for: "bb", in: 1, zone: "b") == nil, "a member is not in its own way")
        #expect(map.zoneConflict(for: "ccc", in: 2, zone: "b") == nil, "another group")
        #expect(map.zoneConflict(for: "ccc", in: HeartbeatReport.spareGroup, zone: "b") == nil, "spares wait in no group")
        // In another zone it joins; members that stay where they are go on.
        #expect(offer(zoned("ccc", zone: "c"), to: &map) == nil)
        #expect(offer(zoned("bb", zone: "b"), to: &map, nowMs: 1000) == nil)
        #expect(map.state(of: 1) == .healthy)
        // A member moving into a taken zone is refused, as is one moving into a group where its zone is taken.
        #expect(offer(zoned("a", zone: "c"), to: &map) == "ccc")
        #expect(offer(zoned("dddd", zone: "z", group: 2), to: &map) == nil)
        #expect(offer(zoned("dddd", zone: "a", group: 1), to: &map) == "a")
        let zones = map.snapshot(master: "m", nowMs: 0, wallClockMs: 0).groups[0].members.map(\.zone)
        #expect(zones == ["a", "b", "c"])
    }

    @Test func allowingSameZoneRegistersWhatWouldBeRefused() throws {
        var map = ClusterMap()
        _ = try map.register(ServerRegistration(id: "a", group: 1, addr: "10.0.0.1:7657", zone: "rack1"))
        let refused = ServerRegistration(id: "b", group: 1, addr: "10.0.0.2:7657", zone: "rack1")
        #expect(throws: ClusterMap.AdminError.zoneConflict(server: "b", group: 1, zone: "rack1", other: "a")) { try map.register(refused) }
        #expect(map.members["b"] == nil)
        _ = try map.register(refused, allowSameZone: true)
        #expect(map.members["b"]?.failureZone == "rack1")
        // A registered zone stands for a server that names none, until it names one.
        var unnamed = zoned("a", zone: nil, host: "10.0.0.1")
        _ = map.apply(unnamed, nowMs: 0)
        #expect(map.members["a"]?.failureZone == "rack1")
        unnamed.zone = "rack2"
        _ = map.apply(unnamed, nowMs: 10)
        #expect(map.members["a"]?.failureZone == "rack2")
    }

    @Test func retiredAndLostMembersLeaveTheirZone() throws {
        var map = ClusterMap()
        for (id, zone) in [("a", "a"), ("bb", "b"), ("ccc", "c")] { #expect(offer(zoned(id, zone: zone), to: &map) == nil) }
        #expect(offer(zoned("dddd", zone: "b"), to: &map) == "bb")
        // Removed from the cluster, bb no longer counts.
        _ = try map.setStatus(of: "bb", to: .offline)
        _ = try map.retire("bb")
        #expect(map.zoneConflict(for: "dddd", in: 1, zone: "b") == nil)
        #expect(offer(zoned("dddd", zone: "b"), to: &map, nowMs: 100) == nil)
        // A member seen going down leaves its zone to its replacement...
        _ = map.expire(nowMs: 5000, downAfterMs: 3000)
        _ = map.apply(zoned("a", zone: "a"), nowMs: 5000)
        #expect(map.members["ccc"]?.status == .down)
        #expect(map.zoneConflict(for: "eeeee", in: 1, zone: "c") == nil)
        // ...but one remembered from the database keeps it until the master had time to hear from it.
        var restarted = ClusterMap(startedMs: 0)
        restarted.restore(id: "ccc", group: 1, addr: "127.0.0.1:7003")
        #expect(restarted.zoneConflict(for: "eeeee", in: 1, zone: "127.0.0.1") == "ccc")
        _ = restarted.expire(nowMs: 4000, downAfterMs: 3000)
        #expect(restarted.zoneConflict(for: "eeeee", in: 1, zone: "127.0.0.1") == nil)
        // It reports a zone of its own then: still the member it was, not refused.
        var again = ClusterMap(startedMs: 0)
        again.restore(id: "bb", group: 1, addr: "127.0.0.1:7002")
        again.restore(id: "ccc", group: 1, addr: "127.0.0.1:7003")
        #expect(offer(zoned("bb", zone: "x"), to: &again) == nil)
        #expect(offer(zoned("ccc", zone: "x"), to: &again) == nil)
    }

    @Test func aServerNamingNoZoneIsInItsHostsZone() {
        #expect(FailureZone.defaultZone(ofAddress: "Stor1.example.com:7657") == "stor1.example.com")
        #expect(FailureZone.defaultZone(ofAddress: "[::1]:7657") == "::1")
        #expect(FailureZone.defaultZone(ofAddress: ":7657") == "127.0.0.1")
        var map = ClusterMap()
        #expect(offer(zoned("a", zone: nil), to: &map) == nil)
        #expect(map.members["a"]?.failureZone == "127.0.0.1")
        #expect(offer(zoned("bb", zone: nil), to: &map) == "a", "two chunkservers on one host share its zone")
        #expect(offer(zoned("bb", zone: nil, host: "10.0.0.2"), to: &map) == nil)
        #expect(offer(zoned("ccc", zone: "elsewhere"), to: &map) == nil, "a zone named on the same host")
        for name in ["a", "rack-1.row_2", String(repeating: "z", count: 63)] { #expect(FailureZone.isValidName(name), "\(name)") }
        for name in ["", "rack 1", "zone/a", "zöne", "a:b", String(repeating: "z", count: 64)] { #expect(!FailureZone.isValidName(name), "\(name)") }
    }
}

import ChunkMaster
import Foundation
import Logging
import ServerSupport
import SpeedyCore
import Testing
import SpeedyTestSupport

func roleReport(
    _ id: String, role: FrontRole = .imageserver, uptimeMs: UInt64 = 1000, requests: UInt64 = 0, serverErrors: UInt64 = 0,
    bytesIn: UInt64 = 0, ready: Bool = true
) -> RoleReport {
    RoleReport(
        role: role, id: id, addr: "127.0.0.1:6788", version: SpeedyVersion.current, uptimeMs: uptimeMs, requests: requests,
        clientErrors: 0, serverErrors: serverErrors, bytesIn: bytesIn, bytesOut: 0, openUploads: 2, residentBytes: 80 << 20,
        ready: ready, notReadyReason: ready ? nil : "no group takes writes")
}

/// The imageservers and metaservers on the master's map, operator jobs, group removal and
/// capacity counted once per group.
@Suite("Whole cluster on the master")
struct ClusterViewTests {
    @Test func rolesJoinReportRatesGoDownAndComeBack() {
        var roles = FrontRoleMap()
        #expect(roles.apply(roleReport("is1"), nowMs: 0) == [.joined(role: .imageserver, id: "is1", addr: "127.0.0.1:6788")])
        #expect(roles.apply(roleReport("meta", role: .metaserver), nowMs: 0).count == 1)
        // Rates come from the difference between reports, over the reported uptime.
        #expect(roles.apply(roleReport("is1", uptimeMs: 3000, requests: 400, serverErrors: 10, bytesIn: 2_000_000), nowMs: 2000).isEmpty)
        var shown = roles.snapshots(of: .imageserver, nowMs: 2500)
        #expect(shown.count == 1)
        #expect(shown[0].requestsPerSec == 200 && shown[0].serverErrorsPerSec == 5 && shown[0].bytesInPerSec == 1_000_000)
        #expect(shown[0].status == .up && shown[0].lastHeartbeatAgeMs == 500 && shown[0].openUploads == 2)
        #expect(roles.snapshots(of: .metaserver, nowMs: 2500).map(\.id) == ["meta"])

        // Silent past the timeout: down, rates zero; the metaserver too.
        let changes = roles.expire(nowMs: 5001, downAfterMs: 3000)
        #expect(changes == [.down(role: .imageserver, id: "is1", silentMs: 3001), .down(role: .metaserver, id: "meta", silentMs: 5001)])
        shown = roles.snapshots(of: .imageserver, nowMs: 5001)
        #expect(shown[0].status == .down && shown[0].requestsPerSec == 0 && !shown[0].ready)
        #expect(roles.expire(nowMs: 6000, downAfterMs: 3000).isEmpty, "said once")

        // A restarted process (uptime went back) is up again with fresh counters.
        #expect(roles.apply(roleReport("is1", uptimeMs: 500, requests: 3), nowMs: 7000) == [.up(role: .imageserver, id: "is1")])
        shown = roles.snapshots(of: .imageserver, nowMs: 7000)
        #expect(shown[0].status == .up && shown[0].requestsPerSec == 0)
        // Forgotten after an hour of silence.
        _ = roles.expire(nowMs: 7000 + FrontRoleMap.forgetAfterMs + 1, downAfterMs: 3000)
        #expect(roles.snapshots(of: .imageserver, nowMs: 0).isEmpty)

        // A role stopping cleanly leaves at once; a farewell from one unknown changes nothing.
        _ = roles.apply(roleReport("is2"), nowMs: 8000)
        var farewell = roleReport("is2")
        farewell.leaving = true
        #expect(roles.apply(farewell, nowMs: 8100) == [.left(role: .imageserver, id: "is2")])
        #expect(roles.snapshots(of: .imageserver, nowMs: 8100).isEmpty)
        #expect(roles.apply(farewell, nowMs: 8200).isEmpty)
    }

    @Test func jobsShowProgressRateAndETAAndEndOnce() {
        var board = JobBoard()
        var job = JobReport(id: "j1", kind: "verify", target: "group 1", state: .running, done: 0, total: 100, bytes: 0)
        #expect(board.apply(job, actor: "alice@h (chunktool)", nowMs: 0) == [.started(kind: "verify", target: "group 1", actor: "alice@h (chunktool)")])
        job.done = 25
        job.bytes = 50_000_000
        #expect(board.apply(job, actor: nil, nowMs: 10_000).isEmpty)
        var shown = board.snapshots(nowMs: 10_000)
        #expect(shown.count == 1)
        #expect(shown[0].fraction == 0.25 && shown[0].bytesPerSec == 5_000_000 && shown[0].itemsPerSec == 2.5)
        #expect(shown[0].etaSeconds == 30)
        #expect(shown[0].actor == "alice@h (chunktool)")
        // A job that stops reporting is lost, not running forever.
        #expect(board.snapshots(nowMs: 10_000 + JobBoard.lostAfterMs + 1)[0].report.state == .lost)

        job.state = .finished
        job.done = 100
        job.message = "clean"
        let ended = board.apply(job, actor: nil, nowMs: 20_000)
        #expect(ended == [.ended(kind: "verify", target: "group 1", state: .finished, message: "clean", actor: "alice@h (chunktool)")])
        #expect(ended[0].event.message == "verify of group 1 finished: clean (alice@h (chunktool))")
        // A progress report that arrives late does not revive it.
        job.state = .running
        #expect(board.apply(job, actor: nil, nowMs: 20_500).isEmpty)
        shown = board.snapshots(nowMs: 21_000)
        #expect(shown[0].report.state == .finished && shown[0].etaSeconds == nil && shown[0].fraction == 1)
        // Ended jobs leave the board after a while.
        #expect(board.snapshots(nowMs: 21_000).count == 1)
        _ = board.apply(JobReport(id: "j2", kind: "repair", target: "group 2", state: .running, done: 0, total: 0, bytes: 0), actor: nil, nowMs: 20_000 + JobBoard.keepEndedMs + 1)
        #expect(board.snapshots(nowMs: 20_000 + JobBoard.keepEndedMs + 1).map(\.report.id) == ["j2"])
    }

    @Test func onlyAnEmptyGroupIsRemovedAndTheRemovalIsKept() async throws {
        var map = ClusterMap()
        _ = try map.addGroup(7)
        _ = map.apply(report("a", group: 1), nowMs: 0)
        #expect(throws: ClusterMap.AdminError.groupNotEmpty(1, members: 1)) { try map.removeGroup(1) }
        #expect(throws: ClusterMap.AdminError.unknownGroup(9)) { try map.removeGroup(9) }
        #expect(try map.removeGroup(7) == [.groupRemoved(group: 7)])
        #expect(map.snapshot(master: "m", nowMs: 0, wallClockMs: 0).groups.map(\.id) == [1])

        // Through the master: saved, so a restart does not bring it back; logged with who did it.
        let temporary = try TemporaryDirectory("group-removal")
        defer { temporary.remove() }
        let dir = temporary.path
        let configuration = ChunkMasterConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), dataDirectory: dir, security: .insecure)
        let master = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        _ = try await master.administer(group: 3) { map throws(ClusterMap.AdminError) in try map.addGroup(3) }
        _ = try await master.administer(group: 4) { map throws(ClusterMap.AdminError) in try map.addGroup(4) }
        try await master.removeGroup(3, by: "alice@h (chunktool)")
        let restarted = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        #expect(restarted.snapshot().groups.map(\.id) == [4])
        let events = try await SQLiteMasterStore(path: dir + "/master.sqlite").events(after: 0, limit: 100)
        #expect(events.contains { $0.kind == "group-removed" && $0.group == 3 && $0.message.hasSuffix("by alice@h (chunktool)") })
        // Added again, it is back.
        _ = try await restarted.administer(group: 3) { map throws(ClusterMap.AdminError) in try map.addGroup(3) }
        #expect(try await ChunkMaster(configuration: configuration, logger: Logger(label: "test")).snapshot().groups.map(\.id) == [3, 4])
    }

    @Test func capacityCountsEachGroupOnceAsItsSmallestMember() {
        var map = ClusterMap()
        for (id, group, total, used) in [("a", 1, 1000, 300), ("b", 1, 800, 250), ("c", 1, 1000, 200), ("d", 2, 500, 100), ("e", 2, 600, 50)] {
            var r = report(id, group: UInt32(group))
            r.diskTotalBytes = UInt64(total)
            r.diskUsedBytes = UInt64(used)
            r.diskFreeBytes = UInt64(total - used)
            _ = map.apply(r, nowMs: 0)
        }
        let totals = map.snapshot(master: "m", nowMs: 0, wallClockMs: 0).totals
        #expect(totals.diskTotalBytes == 3900, "raw: every replica")
        #expect(totals.usableTotalBytes == 800 + 500, "usable: the smallest member of each group")
        #expect(totals.usableUsedBytes == 300 + 100, "the fullest member of each group")
        #expect(totals.usableFreeBytes == 550 + 400, "the least free member of each group")
    }

    /// A newer imageserver, tool or console reads an older master's map (before 0.12: no usable
    /// capacity, no roles or jobs), so the roles can be upgraded in any order.
    @Test func aMapFromAMasterBeforeUsableCapacityStillDecodes() throws {
        var map = ClusterMap()
        for id in ["a", "b", "c"] { _ = map.apply(report(id, group: 1), nowMs: 0) }
        let current = map.snapshot(master: "m", nowMs: 0, wallClockMs: 0)
        var json = try #require(try JSONSerialization.jsonObject(with: try WireJSON.encoder().encode(current)) as? [String: Any])
        var totals = try #require(json["totals"] as? [String: Any])
        for key in ["usableTotalBytes", "usableUsedBytes", "usableFreeBytes"] { #expect(totals.removeValue(forKey: key) != nil) }
        json["totals"] = totals
        for key in ["imageservers", "metaservers", "jobs"] { json.removeValue(forKey: key) }
        let old = try WireJSON.decoder().decode(ClusterSnapshot.self, from: try JSONSerialization.data(withJSONObject: json))
        #expect(old.groups == current.groups)
        #expect(old.totals.diskTotalBytes == current.totals.diskTotalBytes && old.totals.usableTotalBytes == 0)
        // And the current form goes through whole.
        #expect(try WireJSON.decoder().decode(ClusterSnapshot.self, from: try WireJSON.encoder().encode(current)) == current)
    }

    @Test func actorHeadersAreCleanedForTheLog() {
        #expect(SpeedyHeader.actor(from: nil) == nil)
        #expect(SpeedyHeader.actor(from: "") == nil)
        #expect(SpeedyHeader.actor(from: "bob@h (chunktool)\n\u{1b}[31mforged line") == "bob@h (chunktool)[31mforged line")
        #expect(SpeedyHeader.actor(from: String(repeating: "x", count: 500))?.count == 100)
    }

    @Test func logLinesInJSONEscapeEverything() {
        #expect(JSONLogHandler.quote("a\"b\\c\nd\u{01}é") == #""a\"b\\c\nd\u0001é""#)
    }

    @Test func theRoleMapAndTheJobBoardStayBoundedWhateverTheyAreTold() {
        var roles = FrontRoleMap()
        for i in 0..<FrontRoleMap.capacity { _ = roles.apply(roleReport("is\(i)"), nowMs: 0) }
        #expect(!roles.hasRoom(for: roleReport("one-more")))
        #expect(roles.hasRoom(for: roleReport("is7")), "a role on the map keeps reporting")
        // Texts are made printable before they reach the map, the event log and a terminal.
        var report = roleReport("evil\n\u{1b}[2Jid")
        report.notReadyReason = "a\r\nforged event"
        #expect(report.cleaned.id == "evil[2Jid" && report.cleaned.notReadyReason == "aforged event")

        var board = JobBoard()
        // A tiny fraction over a long time: no overflow, no ETA.
        _ = board.apply(JobReport(id: "j", kind: "verify", target: "t", state: .running, done: 0, total: Int.max, bytes: 0), actor: nil, nowMs: 0)
        _ = board.apply(JobReport(id: "j", kind: "verify", target: "t", state: .running, done: 1, total: Int.max, bytes: 0), actor: nil, nowMs: 5_000_000)
        #expect(board.snapshots(nowMs: 5_000_000)[0].etaSeconds == nil)
        for i in 0..<(JobBoard.capacity + 20) {
            _ = board.apply(JobReport(id: "k\(i)", kind: "repair", target: "t", state: .running, done: 0, total: 1, bytes: 0), actor: nil, nowMs: 6_000_000 + Int64(i))
        }
        #expect(board.snapshots(nowMs: 6_000_100).count == JobBoard.capacity)
    }

    @Test func gaugesOfThingsThatWentLeaveTheScrape() {
        let gauges = ScrapedGauges()
        gauges.publish([.init("speedy_test_member_up", [("server", "a")], 1), .init("speedy_test_member_up", [("server", "b")], 0)])
        var text = String(decoding: RoleMetrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"speedy_test_member_up{server="a"} 1"#) && text.contains(#"speedy_test_member_up{server="b"} 0"#))
        gauges.publish([.init("speedy_test_member_up", [("server", "a")], 1)])
        text = String(decoding: RoleMetrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"speedy_test_member_up{server="a"} 1"#))
        #expect(!text.contains(#"server="b""#))
    }

    @Test func aServerJoiningARemovedGroupBringsItBackForGood() async throws {
        let temporary = try TemporaryDirectory("group-revival")
        defer { temporary.remove() }
        let dir = temporary.path
        let configuration = ChunkMasterConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), dataDirectory: dir, security: .insecure)
        let master = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        _ = try await master.administer(group: 5) { map throws(ClusterMap.AdminError) in try map.addGroup(5) }
        try await master.removeGroup(5)
        _ = try await master.heartbeat(report("late", group: 5))
        let restarted = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        #expect(restarted.snapshot().groups.map(\.id) == [5])
    }
}

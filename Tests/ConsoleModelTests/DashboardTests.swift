import ConsoleModel
import SpeedyCore
import Testing

func member(_ id: String, status: ServerStatus = .readWrite, used: UInt64 = 25, total: UInt64 = 100, write: Double = 0) -> MemberSnapshot {
    MemberSnapshot(
        id: id, addr: "127.0.0.1:\(7600 + id.count)", status: status, diskTotalBytes: total << 30, diskUsedBytes: used << 30,
        diskFreeBytes: (total - used) << 30, chunkCount: 12, readBytesPerSec: 0, writeBytesPerSec: write, readOpsPerSec: 0,
        writeOpsPerSec: write > 0 ? 1 : 0, lastHeartbeatAgeMs: 300, crcErrors: 0, ioErrors: 0, pendingWrites: 0, uptimeMs: 65_000,
        history: ThroughputHistory(readBytesPerSec: [0, 0, 0, 0], writeBytesPerSec: [0, write / 2, write, 0]))
}

func snapshot(_ groups: [(UInt32, [MemberSnapshot])]) -> ClusterSnapshot {
    let built = groups.map { id, members in
        GroupSnapshot(
            id: id, state: GroupState.derive(from: members.map(\.status)), members: members, diskTotalBytes: 100 << 30,
            diskUsedBytes: 25 << 30, diskFreeBytes: 75 << 30, readBytesPerSec: 0, writeBytesPerSec: members.reduce(0) { $0 + $1.writeBytesPerSec })
    }
    return ClusterSnapshot(
        master: "http://127.0.0.1:8099", generatedAtMs: 0, groups: built, totals: ClusterTotals(groups: built),
        recentEvents: [ClusterEvent(id: 1, timeMs: 0, kind: "server-down", serverId: "b", group: 1, message: "server b in group 1 is down")])
}

@Suite("Console dashboard")
struct DashboardTests {
    func state(_ snap: ClusterSnapshot?) -> ConsoleState {
        var state = ConsoleState(master: "http://127.0.0.1:8099")
        state.snapshot = snap
        state.updatedAtMs = 0
        return state
    }

    func text(_ lines: [ScreenLine]) -> String { lines.map(\.text).joined(separator: "\n") }

    @Test func fitsEightyByTwentyFourAndShowsEveryMember() {
        let snap = snapshot([(1, [member("a", write: 4 * 1_048_576), member("b"), member("c")]), (2, [member("d", used: 95)])])
        let lines = Dashboard(glyphs: .unicode).render(state(snap), width: 80, height: 24, nowMs: 0)
        #expect(lines.count == 24)
        #expect(lines.allSatisfy { $0.text.count == 80 })
        let screen = text(lines)
        for id in ["a", "b", "c", "d"] { #expect(screen.contains(" \(id) ")) }
        #expect(screen.contains("● healthy"))
        #expect(screen.contains("25.0%"))
        #expect(screen.contains("95.0%"))
        #expect(screen.contains("4.00 MiB/s"))
        #expect(screen.contains("server b in group 1 is down"))
        #expect(screen.contains("servers 4/4 up"))
    }

    @Test func reclaimableAndReclaimedSpaceShowPerGroupAndServer() {
        var a = member("a"), b = member("b")
        a.reclaimableBytes = 300 << 20
        a.reclaimedBytes = 1 << 30
        b.reclaimableBytes = 200 << 20
        var snap = snapshot([(1, [a, b])])
        snap.groups[0].reclaimableBytes = 300 << 20
        snap.groups[0].reclaimedBytes = 1 << 30
        let screen = text(Dashboard(glyphs: .unicode).render(state(snap), width: 120, height: 40, nowMs: 0))
        #expect(screen.contains("group 1 ● healthy  dead 300.0 MiB"))
        #expect(screen.contains(" space   dead 300.0 MiB  freed 1.00 GiB"))
        #expect(screen.contains("reclaimable 300.0 MiB"))
    }

    @Test func degradedAndDownGroupsStandOut() {
        let snap = snapshot([(1, [member("a"), member("b", status: .down), member("c")]), (2, [member("d", status: .down)])])
        let lines = Dashboard(glyphs: .unicode).render(state(snap), width: 100, height: 30, nowMs: 0)
        #expect(text(lines).contains("▲ degraded"))
        #expect(text(lines).contains("✖ down"))
        // The selected row is drawn reversed; the other group keeps its colour.
        let down = lines.flatMap(\.spans).first { $0.text.contains("✖ down") }
        #expect(down?.style == .down)
    }

    @Test func aGroupBeingRecoveredShowsItsReplacement() {
        let snap = snapshot([(1, [member("a"), member("b", status: .down), member("c"), member("new", status: .transferring)]), (2, [member("d")])])
        let lines = Dashboard(glyphs: .unicode).render(state(snap), width: 100, height: 30, nowMs: 0)
        let screen = text(lines)
        #expect(screen.contains("◐ recovering"))
        #expect(screen.contains("1 recovering"))
        #expect(lines.flatMap(\.spans).contains { $0.text.hasPrefix("XFER") && $0.style == .transferring })
        let ascii = text(Dashboard(glyphs: .ascii).render(state(snap), width: 100, height: 30, nowMs: 0))
        #expect(ascii.contains("~ recovering"))
    }

    @Test func plainGlyphsWithoutColours() {
        let snap = snapshot([(1, [member("a", write: 1000), member("b", status: .down)])])
        let screen = text(Dashboard(glyphs: .ascii).render(state(snap), width: 80, height: 24, nowMs: 0))
        #expect(screen.contains("! degraded"))
        #expect(!screen.unicodeScalars.contains { $0.value > 127 && $0 != "…" && $0 != "—" && $0 != "↑" && $0 != "↓" })
    }

    @Test func staleDataIsMarkedWithABanner() {
        var s = state(snapshot([(1, [member("a")])]))
        s.connectionError = "cannot connect"
        s.retryInSeconds = 4
        let screen = text(Dashboard(glyphs: .unicode).render(s, width: 120, height: 24, nowMs: 0))
        #expect(screen.contains("master unreachable: cannot connect"))
        #expect(screen.contains("retrying in 4s"))
        #expect(screen.contains("(stale)"))
        #expect(screen.contains(" a "))
    }

    @Test func keysMoveSelectFilterAndQuit() {
        var s = state(snapshot([(1, [member("a"), member("b")]), (2, [member("cc")])]))
        do { let ok = s.handle(.down); #expect(ok) }
        do { let ok = s.handle(.character("j")); #expect(ok) }
        #expect(s.selection == 2)
        do { let ok = s.handle(.down); #expect(ok) }
        #expect(s.selection == 2)
        do { let ok = s.handle(.character("k")); #expect(ok) }
        #expect(s.selection == 1)
        var screen = text(Dashboard(glyphs: .unicode).render(s, width: 80, height: 24, nowMs: 0))
        #expect(screen.contains("b ") && screen.contains("127.0.0.1:7601"))
        _ = s.handle(.slash)
        for c in "cc" { _ = s.handle(.character(c)) }
        _ = s.handle(.enter)
        #expect(s.rows.map(\.member?.id) == ["cc"])
        #expect(s.selection == 0)
        screen = text(Dashboard(glyphs: .unicode).render(s, width: 80, height: 24, nowMs: 0))
        #expect(screen.contains("filter: cc"))
        _ = s.handle(.escape)
        #expect(s.rows.count == 3)
        _ = s.handle(.tab)
        #expect(s.focus == .events)
        _ = s.handle(.help)
        #expect(text(Dashboard(glyphs: .unicode).render(s, width: 80, height: 24, nowMs: 0)).contains("Speedy console: keys"))
        do { let ok = s.handle(.character("x")); #expect(ok) }
        #expect(!s.showHelp)
        do { let ok = s.handle(.quit); #expect(!ok) }
    }

    @Test func redrawsAtAnySizeWithoutOverflow() {
        let s = state(snapshot([(1, [member("a"), member("b"), member("c")])]))
        for (w, h) in [(80, 24), (132, 43), (60, 15), (200, 60)] {
            let lines = Dashboard(glyphs: .unicode).render(s, width: w, height: h, nowMs: 0)
            #expect(lines.count == h)
            #expect(lines.allSatisfy { $0.text.count == max(w, 20) })
        }
    }

    @Test func actionsAskFirstAndOnlyAYesSendsThem() {
        var s = state(snapshot([(1, [member("a"), member("b"), member("c")])]))
        _ = s.handle(.down)
        _ = s.handle(.character("s"))
        #expect(s.prompt == .chooseStatus(server: "b"))
        #expect(text(Dashboard(glyphs: .unicode).render(s, width: 100, height: 30, nowMs: 0)).contains("Set b to: [w] RW  [r] RO  [o] OFFLINE"))
        // Keys answer the prompt, not the dashboard: j does not move the selection.
        _ = s.handle(.character("j"))
        #expect(s.prompt == nil && s.selection == 1 && s.notice == "cancelled" && s.takeActions().isEmpty)
        _ = s.handle(.character("s"))
        _ = s.handle(.character("o"))
        #expect(s.prompt == .confirm(.setStatus(server: "b", status: .offline)))
        #expect(text(Dashboard(glyphs: .unicode).render(s, width: 100, height: 30, nowMs: 0)).contains("Set b to OFFLINE"))
        _ = s.handle(.character("n"))
        #expect(s.takeActions().isEmpty)
        _ = s.handle(.character("s"))
        _ = s.handle(.character("r"))
        _ = s.handle(.character("y"))
        #expect(s.takeActions() == [.setStatus(server: "b", status: .readOnly)])
        #expect(s.takeActions().isEmpty, "taken once")
        _ = s.handle(.character("v"))
        _ = s.handle(.character("y"))
        #expect(s.takeActions() == [.verify(group: 1)])
        // q during a prompt cancels it rather than quitting.
        _ = s.handle(.character("v"))
        #expect(s.handle(.character("q")) && s.prompt == nil)
    }

    @Test func frontPaneShowsEachRoleAndJobsShowProgress() {
        var snap = snapshot([(1, [member("a"), member("b"), member("c")])])
        snap.imageservers = [
            RoleSnapshot(
                id: "is1", addr: "10.0.0.1:6788", status: .up, lastHeartbeatAgeMs: 400, version: "0.12.0", uptimeMs: 1000, ready: true,
                notReadyReason: nil, requestsPerSec: 120, clientErrorsPerSec: 2, serverErrorsPerSec: 0.5, bytesInPerSec: 52_428_800,
                bytesOutPerSec: 10_485_760, openUploads: 7, residentBytes: 90 << 20),
            RoleSnapshot(
                id: "is2", addr: "10.0.0.2:6788", status: .down, lastHeartbeatAgeMs: 9000, version: "0.12.0", uptimeMs: 1000, ready: false,
                notReadyReason: "no heartbeat", requestsPerSec: 0, clientErrorsPerSec: 0, serverErrorsPerSec: 0, bytesInPerSec: 0,
                bytesOutPerSec: 0, openUploads: 0, residentBytes: 0),
        ]
        snap.metaservers = []
        snap.jobs = [
            JobSnapshot(
                report: JobReport(id: "j", kind: "transfer", target: "group 1", state: .running, done: 40, total: 100, bytes: 400 << 20, totalBytes: 1000 << 20),
                actor: "alice@h (transfer)", startedAgoMs: 8000, updatedAgoMs: 500, fraction: 0.4, bytesPerSec: 52_428_800, itemsPerSec: 5,
                etaSeconds: 72)
        ]
        let screen = text(Dashboard(glyphs: .unicode).render(state(snap), width: 160, height: 40, nowMs: 0))
        #expect(screen.contains("Front"))
        #expect(screen.contains("is1") && screen.contains("req 120.0/s") && screen.contains("4xx/5xx 2.0/0.5") && screen.contains("push 50.0 MiB/s") && screen.contains("uploads 7"))
        #expect(screen.contains("is2") && screen.contains("DOWN"))
        #expect(screen.contains("transfer group 1") && screen.contains("40%") && screen.contains("ETA 1:12") && screen.contains("alice@h"))
        #expect(screen.contains("[████████░░░░░░░░░░░░]"))
        // The master's repairs and spare fills are jobs too; their longer names fit when wide.
        snap.jobs?.append(
            JobSnapshot(
                report: JobReport(id: "r", kind: "repair", target: "group 1 (damaged chunks)", state: .failed, done: 3, total: 3, bytes: 0, message: "0 of 3 chunks repaired"),
                actor: "master", startedAgoMs: 1000, updatedAgoMs: 500, fraction: 1, bytesPerSec: 0, itemsPerSec: 0, etaSeconds: nil))
        let wide = text(Dashboard(glyphs: .unicode).render(state(snap), width: 160, height: 40, nowMs: 0))
        #expect(wide.contains(" repair group 1 (damaged chunks) [████████████████████] 100%  3/3 chunks  0 B/s  failed: 0 of 3 chunks repaired  master"), "\(wide)")
        #expect(text(Dashboard(glyphs: .unicode).render(state(snap), width: 100, height: 40, nowMs: 0)).contains(" repair group 1 (damaged chun ["))
    }

    static let hour: Int64 = 3_600_000

    func scrub(running: Bool, checked: UInt64 = 0, of total: UInt64 = 100, lastFullPassMs: Int64?, damaged: [UInt64] = [], found: UInt64 = 0) -> ScrubReport {
        ScrubReport(
            passStartedMs: 0, running: running, position: 0, checkedChunks: 0, checkedBytes: checked, passBytes: total,
            lastFullPassMs: lastFullPassMs, passes: lastFullPassMs == nil ? 0 : 5, bytesPerSec: 64 * 1_048_576, damaged: damaged, damagedFound: found)
    }

    /// A cluster that heals itself: g1 scrubbing (a, 37%; b idle; c damaged), a spare in zone rack-s.
    func healingSnapshot(nowMs: Int64) -> ClusterSnapshot {
        var a = member("a"), b = member("b"), c = member("c")
        a.scrub = scrub(running: true, checked: 37, lastFullPassMs: nowMs - 2 * Self.hour)
        a.zone = "rack-a"
        b.scrub = scrub(running: false, lastFullPassMs: nowMs - 90_000)
        c.scrub = scrub(running: true, checked: 5, lastFullPassMs: nil, damaged: [11, 12, 13], found: 4)
        var spare = member("sp1")
        spare.spare = true
        spare.zone = "rack-s"
        spare.scrub = scrub(running: false, lastFullPassMs: nil)
        var snap = snapshot([(1, [a, b, c])])
        snap.spares = [spare]
        return snap
    }

    @Test func scrubColumnShowsProgressLastFullPassAndDamaged() {
        let now: Int64 = 1_000 * Self.hour
        let lines = Dashboard(glyphs: .unicode).render(state(healingSnapshot(nowMs: now)), width: 100, height: 30, nowMs: now)
        let screen = text(lines)
        #expect(lines.allSatisfy { $0.text.count == 100 })
        #expect(screen.contains("SCRUB"))
        #expect(screen.contains(" 37% 2h "), "a: this pass 37%, last full pass 2 h ago\n\(screen)")
        #expect(screen.contains("idle 1m "), "b: between passes")
        #expect(screen.contains("3 damaged"))
        #expect(lines.flatMap(\.spans).contains { $0.text.hasPrefix("3 damaged") && $0.style == .down })
        #expect(screen.contains("servers 3/3 up + 1 spare │ 3 damaged"))
    }

    @Test func detailPaneShowsScrubDamagedAndZone() {
        let now: Int64 = 1_000 * Self.hour
        var s = state(healingSnapshot(nowMs: now))
        var screen = text(Dashboard(glyphs: .unicode).render(s, width: 80, height: 24, nowMs: now))
        // At 80 columns the table has no SCRUB column; the detail pane has it.
        #expect(!screen.contains("SCRUB"))
        #expect(screen.contains(" addr    127.0.0.1:7601  zone rack-a"), "\(screen)")
        // The pace is left out where it would be cut (the left pane is 40 columns wide at 80).
        #expect(screen.contains(" scrub   37%  full pass 2h ago    "), "\(screen)")
        #expect(text(Dashboard(glyphs: .unicode).render(s, width: 100, height: 30, nowMs: now)).contains(" scrub   37%  full pass 2h ago  64.0 MiB/s"))
        #expect(screen.contains("│ 3 damaged"))
        _ = s.handle(.down)
        _ = s.handle(.down)
        screen = text(Dashboard(glyphs: .unicode).render(s, width: 100, height: 30, nowMs: now))
        #expect(screen.contains(" scrub   5%  full pass never"), "\(screen)")
        #expect(screen.contains(" damaged 3 now  4 found"))
    }

    @Test func sparesAreRowsMarkedSpareWithTheirZone() {
        let now: Int64 = 1_000 * Self.hour
        var s = state(healingSnapshot(nowMs: now))
        #expect(s.rows.map(\.member?.id) == ["a", "b", "c", "sp1"])
        #expect(s.rows.last?.isSpare == true)
        var lines = Dashboard(glyphs: .unicode).render(s, width: 100, height: 30, nowMs: now)
        #expect(text(lines).contains("spare rack-s      sp1 "), "\(text(lines))")
        #expect(lines.flatMap(\.spans).contains { $0.text.hasPrefix("spare rack-s") && $0.style == .transferring })
        #expect(text(lines).contains("idle never"))
        // Selected: the detail pane says what it is; verify has no group to read.
        for _ in 0..<3 { _ = s.handle(.down) }
        lines = Dashboard(glyphs: .unicode).render(s, width: 100, height: 30, nowMs: now)
        #expect(text(lines).contains(" spare  in no group yet"))
        #expect(text(lines).contains("zone rack-s"))
        _ = s.handle(.character("v"))
        #expect(s.prompt == nil && s.notice?.contains("spare") == true)
        // The filter finds spares by the word and by zone.
        s.filter = "rack-s"
        #expect(s.rows.map(\.member?.id) == ["sp1"])
        s.filter = "spare"
        #expect(s.rows.map(\.member?.id) == ["sp1"])
    }

    @Test func lostChunksRaiseAnAlertLine() {
        var snap = snapshot([(1, [member("a"), member("b")])])
        let digest = "sha256:" + String(repeating: "abcd", count: 16)
        snap.lostChunks = [
            LostChunk(group: 1, fileId: 7, foundMs: 0, why: "crc", usedBy: ["library/app@\(digest)", "other@\(digest)"]),
            LostChunk(group: 1, fileId: 8, foundMs: 0, why: "crc", usedBy: ["library/app@\(digest)"]),
        ]
        let lines = Dashboard(glyphs: .unicode).render(state(snap), width: 120, height: 30, nowMs: 0)
        let alert = lines.first { $0.text.contains("LOST") }
        #expect(alert?.text.hasPrefix(" LOST 2 chunks in group 1 — used by library/app@sha256:abcdabcdabcd…, other@sha256:abcdabcdabcd…") == true, "\(text(lines))")
        #expect(alert?.spans.allSatisfy { $0.style == .banner } == true)
        #expect(lines.count == 30)
        snap.lostChunks = [LostChunk(group: 2, fileId: 9, foundMs: 0, why: "io")]
        #expect(text(Dashboard(glyphs: .unicode).render(state(snap), width: 120, height: 30, nowMs: 0)).contains("LOST 1 chunk in group 2 — the blobs using them are not known yet"))
        snap.lostChunks = []
        #expect(!text(Dashboard(glyphs: .unicode).render(state(snap), width: 120, height: 30, nowMs: 0)).contains("LOST"))
    }
}

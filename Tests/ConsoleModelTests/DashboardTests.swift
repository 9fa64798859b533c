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
    }
}

import CommandLineSupport
import ArgumentParser
import Foundation
import SpeedyCore
import ToolSupport

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every group, its state and its members' disks, traffic and scrub, lost chunks and spares.",
        discussion: """
            Exit status 0 when every group is healthy, no chunk is lost and every imageserver and \
            metaserver is up, 1 when any group is recovering, degraded, read-only or down, any chunk \
            is lost (no member of its group holds it intact: listed under LOST, with the blobs that \
            use it) or any of those roles is down, 2 when the master cannot be asked. With --json, \
            prints the master's cluster snapshot (fields in docs/api.md: lostChunks, spares and each \
            member's scrub among them), with the imageservers and metaservers. Capacity is shown raw \
            (every replica counted) and usable (each group once, as its smallest member).
            """
    )

    @OptionGroup var options: MasterOptions

    @Flag(help: "Print the cluster snapshot as JSON.")
    var json = false

    func run() async throws {
        let snapshot = try await options.snapshot()
        if json {
            try printJSON(snapshot)
        } else {
            print(StatusReport.render(snapshot))
        }
        if StatusReport.hasProblems(snapshot) { throw ToolExit.problems }
    }
}

/// The people-facing rendering of a snapshot.
enum StatusReport {
    /// Whether `snapshot` shows a cluster that needs an operator: a group not healthy, a chunk
    /// lost, or an imageserver or metaserver down (the exit status 1 of `chunktool status`).
    static func hasProblems(_ snapshot: ClusterSnapshot) -> Bool {
        let rolesDown = ((snapshot.imageservers ?? []) + (snapshot.metaservers ?? [])).contains { $0.status == .down }
        let lost = !(snapshot.lostChunks ?? []).isEmpty
        return snapshot.groups.contains { $0.state != .healthy } || rolesDown || lost
    }

    static func render(_ snapshot: ClusterSnapshot) -> String {
        var lines = summary(snapshot)
        if let lost = snapshot.lostChunks, !lost.isEmpty {
            lines.append("")
            lines += lostSection(lost, nowMs: snapshot.generatedAtMs)
        }
        lines.append("")
        if snapshot.groups.isEmpty {
            lines.append("no chunkservers have reported yet")
        } else {
            lines.append(groupTable(snapshot))
        }
        if let spares = snapshot.spares {
            lines.append("")
            lines += spareSection(spares)
        }
        lines += roleSection(snapshot)
        return lines.joined(separator: "\n")
    }

    /// The lines above the tables: totals of groups, servers, capacity and space.
    private static func summary(_ snapshot: ClusterSnapshot) -> [String] {
        let t = snapshot.totals
        let usableFill = t.usableTotalBytes > 0 ? Double(t.usableUsedBytes) / Double(t.usableTotalBytes) * 100 : 0
        let reclaimable = snapshot.groups.compactMap(\.reclaimableBytes).reduce(0, +)
        let reclaimed = snapshot.groups.compactMap(\.reclaimedBytes).reduce(0, +)
        return [
            "master \(snapshot.master)",
            "groups \(t.groups): \(t.groupsHealthy) healthy, \(t.groupsRecovering) recovering, \(t.groupsDegraded) degraded, \(t.groupsReadOnly) read-only, \(t.groupsDown) down",
            "servers \(t.serversUp)/\(t.servers) up   read \(ByteSize.format(t.readBytesPerSec))/s   write \(ByteSize.format(t.writeBytesPerSec))/s",
            "capacity usable \(ByteSize.format(t.usableUsedBytes)) / \(ByteSize.format(t.usableTotalBytes)) (\(ByteSize.formatDecimal(usableFill, places: 1))%), \(ByteSize.format(t.usableFreeBytes)) free   raw \(ByteSize.format(t.diskUsedBytes)) / \(ByteSize.format(t.diskTotalBytes)) (every replica)",
            "space   \(ByteSize.format(reclaimable)) reclaimable by compaction   \(ByteSize.format(reclaimed)) reclaimed (per group, the member with most)",
        ]
    }

    /// The loud part: every chunk no member holds intact, when it was found, and what uses it.
    static func lostSection(_ lost: [LostChunk], nowMs: Int64) -> [String] {
        var rows = [["CHUNK", "FOUND", "USED BY", "WHY"]]
        for chunk in lost {
            let usedBy = chunk.usedBy.map { $0.isEmpty ? "no blob" : $0.joined(separator: ", ") } ?? "unknown (the metaserver was not asked)"
            rows.append(["\(chunk.group)/\(chunk.fileId)", age(nowMs - chunk.foundMs), usedBy, chunk.why])
        }
        return [
            "LOST \(lost.count) chunk\(lost.count == 1 ? "" : "s"): no member of the group holds \(lost.count == 1 ? "it" : "them") intact; the blobs that use \(lost.count == 1 ? "it" : "them") cannot be pulled (push them again: docs/recovery.md)",
            Table.render(rows).split(separator: "\n").map { "LOST  " + $0 }.joined(separator: "\n"),
        ]
    }

    /// Groups and their members, with each member's disk, traffic and scrub.
    private static func groupTable(_ snapshot: ClusterSnapshot) -> String {
        let header = ["GROUP", "STATE", "SERVER", "ADDRESS", "STATUS", "USED", "TOTAL", "FILL", "CHUNKS", "RECLAIMABLE", "READ/s", "WRITE/s", "HEARTBEAT", "SCRUB", "LAST SCRUB"]
        var rows = [header]
        for group in snapshot.groups {
            if group.members.isEmpty { rows.append([String(group.id), group.state.rawValue] + Array(repeating: "-", count: header.count - 2)) }
            for (i, m) in group.members.enumerated() {
                let fill = m.diskTotalBytes > 0 ? Double(m.diskUsedBytes) / Double(m.diskTotalBytes) * 100 : 0
                rows.append([
                    i == 0 ? String(group.id) : "", i == 0 ? group.state.rawValue + (group.draining == true ? ", draining" : "") : "", m.id, m.addr, m.status.rawValue,
                    ByteSize.format(m.diskUsedBytes), ByteSize.format(m.diskTotalBytes), ByteSize.formatDecimal(fill, places: 1) + "%",
                    String(m.chunkCount), m.reclaimableBytes.map { ByteSize.format($0) } ?? "-", ByteSize.format(m.readBytesPerSec), ByteSize.format(m.writeBytesPerSec),
                    m.lastHeartbeatAgeMs < 0 ? "never" : "\(m.lastHeartbeatAgeMs) ms ago",
                    scrubProgress(m.scrub), lastFullPass(m.scrub, nowMs: snapshot.generatedAtMs),
                ])
            }
        }
        return Table.render(rows)
    }

    /// Where a member's scrub stands: `42% running` or `idle`, and `, 3 damaged` when it lists
    /// damaged chunks; `-` for a member that does not scrub.
    static func scrubProgress(_ scrub: ScrubReport?) -> String {
        guard let scrub else { return "-" }
        let state = scrub.running ? "\(Int(scrub.fraction * 100))% running" : "idle"
        let listed = scrub.damaged.count
        guard listed > 0 else { return state }
        return state + ", \(listed >= ScrubReport.maxDamagedListed ? "\(listed)+" : String(listed)) damaged"
    }

    /// When a member's last full scrub pass ended (`3h ago`, `never`); `-` when it does not scrub.
    static func lastFullPass(_ scrub: ScrubReport?, nowMs: Int64) -> String {
        guard let scrub else { return "-" }
        return scrub.lastFullPassMs.map { age(nowMs - $0) } ?? "never"
    }

    /// A duration in the past, coarsely: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
    static func age(_ ms: Int64) -> String {
        let seconds = max(0, ms) / 1000
        switch seconds {
        case ..<60: return "\(seconds)s ago"
        case ..<3600: return "\(seconds / 60)m ago"
        case ..<(48 * 3600): return "\(seconds / 3600)h ago"
        default: return "\(seconds / 86400)d ago"
        }
    }

    /// Chunkservers started as spares that no group has taken yet.
    private static func spareSection(_ spares: [MemberSnapshot]) -> [String] {
        guard !spares.isEmpty else { return ["spares: none (a dead member is replaced only by hand)"] }
        var rows = [["SPARE", "ADDRESS", "STATUS", "ZONE", "TOTAL", "FREE", "HEARTBEAT"]]
        for s in spares {
            rows.append([
                s.id, s.addr, s.status.rawValue, s.zone ?? "-", ByteSize.format(s.diskTotalBytes), ByteSize.format(s.diskFreeBytes),
                s.lastHeartbeatAgeMs < 0 ? "never" : "\(s.lastHeartbeatAgeMs) ms ago",
            ])
        }
        return ["spares \(spares.count): waiting to replace a dead member", Table.render(rows)]
    }

    /// The imageservers and metaservers, and why any of them is not ready.
    private static func roleSection(_ snapshot: ClusterSnapshot) -> [String] {
        let roles = (snapshot.imageservers ?? []).map { ("imageserver", $0) } + (snapshot.metaservers ?? []).map { ("metaserver", $0) }
        guard !roles.isEmpty else { return [] }
        var table = [["ROLE", "ID", "ADDRESS", "STATUS", "READY", "REQ/s", "4XX/s", "5XX/s", "IN/s", "OUT/s", "UPLOADS", "MEMORY", "HEARTBEAT"]]
        for (role, r) in roles {
            table.append([
                role, r.id, r.addr, r.status.rawValue, r.ready ? "yes" : "no", ByteSize.formatDecimal(r.requestsPerSec, places: 1),
                ByteSize.formatDecimal(r.clientErrorsPerSec, places: 1), ByteSize.formatDecimal(r.serverErrorsPerSec, places: 1),
                ByteSize.format(r.bytesInPerSec), ByteSize.format(r.bytesOutPerSec), String(r.openUploads), ByteSize.format(r.residentBytes),
                "\(r.lastHeartbeatAgeMs) ms ago",
            ])
        }
        var lines = ["", Table.render(table)]
        for (role, r) in roles where !r.ready { lines.append("\(role) \(r.id) not ready: \(r.notReadyReason ?? "unknown")") }
        return lines
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

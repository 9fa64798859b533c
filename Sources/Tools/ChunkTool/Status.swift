import CommandLineSupport
import ArgumentParser
import Foundation
import SpeedyCore
import ToolSupport

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every group, its state and its members' disks and traffic.",
        discussion: """
            Exit status 0 when every group is healthy and every imageserver and metaserver is up, 1 \
            when any group is recovering, degraded, read-only or down or any of those roles is down, 2 \
            when the master cannot be asked. With --json, prints the master's cluster snapshot (fields \
            in docs/api.md), with the imageservers and metaservers. Capacity is shown raw (every \
            replica counted) and usable (each group once, as its smallest member).
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
        let rolesDown = ((snapshot.imageservers ?? []) + (snapshot.metaservers ?? [])).contains { $0.status == .down }
        if snapshot.groups.contains(where: { $0.state != .healthy }) || rolesDown { throw ToolExit.problems }
    }
}

/// The people-facing rendering of a snapshot.
enum StatusReport {
    static func render(_ snapshot: ClusterSnapshot) -> String {
        let t = snapshot.totals
        let usableFill = t.usableTotalBytes > 0 ? Double(t.usableUsedBytes) / Double(t.usableTotalBytes) * 100 : 0
        var lines: [String] = [
            "master \(snapshot.master)",
            "groups \(t.groups): \(t.groupsHealthy) healthy, \(t.groupsRecovering) recovering, \(t.groupsDegraded) degraded, \(t.groupsReadOnly) read-only, \(t.groupsDown) down",
            "servers \(t.serversUp)/\(t.servers) up   read \(ByteSize.format(t.readBytesPerSec))/s   write \(ByteSize.format(t.writeBytesPerSec))/s",
            "capacity usable \(ByteSize.format(t.usableUsedBytes)) / \(ByteSize.format(t.usableTotalBytes)) (\(ByteSize.formatDecimal(usableFill, places: 1))%), \(ByteSize.format(t.usableFreeBytes)) free   raw \(ByteSize.format(t.diskUsedBytes)) / \(ByteSize.format(t.diskTotalBytes)) (every replica)",
        ]
        let reclaimable = snapshot.groups.compactMap(\.reclaimableBytes).reduce(0, +)
        let reclaimed = snapshot.groups.compactMap(\.reclaimedBytes).reduce(0, +)
        lines.append("space   \(ByteSize.format(reclaimable)) reclaimable by compaction   \(ByteSize.format(reclaimed)) reclaimed (per group, the member with most)")
        lines.append("")
        var rows = [["GROUP", "STATE", "SERVER", "ADDRESS", "STATUS", "USED", "TOTAL", "FILL", "CHUNKS", "RECLAIMABLE", "READ/s", "WRITE/s", "HEARTBEAT"]]
        for group in snapshot.groups {
            if group.members.isEmpty { rows.append([String(group.id), group.state.rawValue] + Array(repeating: "-", count: 11)) }
            for (i, m) in group.members.enumerated() {
                let fill = m.diskTotalBytes > 0 ? Double(m.diskUsedBytes) / Double(m.diskTotalBytes) * 100 : 0
                rows.append([
                    i == 0 ? String(group.id) : "", i == 0 ? group.state.rawValue + (group.draining == true ? ", draining" : "") : "", m.id, m.addr, m.status.rawValue,
                    ByteSize.format(m.diskUsedBytes), ByteSize.format(m.diskTotalBytes), ByteSize.formatDecimal(fill, places: 1) + "%",
                    String(m.chunkCount), m.reclaimableBytes.map { ByteSize.format($0) } ?? "-", ByteSize.format(m.readBytesPerSec), ByteSize.format(m.writeBytesPerSec),
                    m.lastHeartbeatAgeMs < 0 ? "never" : "\(m.lastHeartbeatAgeMs) ms ago",
                ])
            }
        }
        if snapshot.groups.isEmpty { lines.append("no chunkservers have reported yet") }
        if !snapshot.groups.isEmpty { lines.append(Table.render(rows)) }
        let roles = (snapshot.imageservers ?? []).map { ("imageserver", $0) } + (snapshot.metaservers ?? []).map { ("metaserver", $0) }
        if !roles.isEmpty {
            lines.append("")
            var table = [["ROLE", "ID", "ADDRESS", "STATUS", "READY", "REQ/s", "4XX/s", "5XX/s", "IN/s", "OUT/s", "UPLOADS", "MEMORY", "HEARTBEAT"]]
            for (role, r) in roles {
                table.append([
                    role, r.id, r.addr, r.status.rawValue, r.ready ? "yes" : "no", ByteSize.formatDecimal(r.requestsPerSec, places: 1),
                    ByteSize.formatDecimal(r.clientErrorsPerSec, places: 1), ByteSize.formatDecimal(r.serverErrorsPerSec, places: 1),
                    ByteSize.format(r.bytesInPerSec), ByteSize.format(r.bytesOutPerSec), String(r.openUploads), ByteSize.format(r.residentBytes),
                    "\(r.lastHeartbeatAgeMs) ms ago",
                ])
            }
            lines.append(Table.render(table))
            for (role, r) in roles where !r.ready { lines.append("\(role) \(r.id) not ready: \(r.notReadyReason ?? "unknown")") }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

import ArgumentParser
import Foundation
import SpeedyCore
import ToolSupport

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every group, its state and its members' disks and traffic.",
        discussion: """
            Exit status 0 when every group is healthy, 1 when any is recovering, degraded, read-only \
            or down, 2 when the master cannot be asked. With --json, prints the master's cluster snapshot \
            (fields in docs/api.md).
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
        if snapshot.groups.contains(where: { $0.state != .healthy }) { throw ToolExit.problems }
    }
}

/// The people-facing rendering of a snapshot.
enum StatusReport {
    static func render(_ snapshot: ClusterSnapshot) -> String {
        let t = snapshot.totals
        let fill = t.diskTotalBytes > 0 ? Double(t.diskUsedBytes) / Double(t.diskTotalBytes) * 100 : 0
        var lines: [String] = [
            "master \(snapshot.master)",
            "groups \(t.groups): \(t.groupsHealthy) healthy, \(t.groupsRecovering) recovering, \(t.groupsDegraded) degraded, \(t.groupsReadOnly) read-only, \(t.groupsDown) down",
            "servers \(t.serversUp)/\(t.servers) up   disk \(ByteSize.format(t.diskUsedBytes)) / \(ByteSize.format(t.diskTotalBytes)) (\(ByteSize.formatDecimal(fill, places: 1))%)   read \(ByteSize.format(t.readBytesPerSec))/s   write \(ByteSize.format(t.writeBytesPerSec))/s",
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
                    i == 0 ? String(group.id) : "", i == 0 ? group.state.rawValue : "", m.id, m.addr, m.status.rawValue,
                    ByteSize.format(m.diskUsedBytes), ByteSize.format(m.diskTotalBytes), ByteSize.formatDecimal(fill, places: 1) + "%",
                    String(m.chunkCount), m.reclaimableBytes.map { ByteSize.format($0) } ?? "-", ByteSize.format(m.readBytesPerSec), ByteSize.format(m.writeBytesPerSec),
                    m.lastHeartbeatAgeMs < 0 ? "never" : "\(m.lastHeartbeatAgeMs) ms ago",
                ])
            }
        }
        if snapshot.groups.isEmpty { lines.append("no chunkservers have reported yet") }
        if !snapshot.groups.isEmpty { lines.append(Table.render(rows)) }
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

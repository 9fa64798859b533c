import CoreMetrics
import Metrics
import ServerSupport
import SpeedyCore

/// The master's own metrics (docs/metrics.md): counters as things happen, and gauges read off
/// the cluster snapshot at each scrape.
struct MasterMetrics: Sendable {
    let heartbeats: Counter
    let fileIdsLeased: Counter

    init() {
        RoleMetrics.bootstrap()
        heartbeats = Counter(label: "speedy_master_heartbeats_total")
        fileIdsLeased = Counter(label: "speedy_master_file_ids_leased_total")
    }

    /// Sets the gauges from `snapshot`.
    func collect(_ snapshot: ClusterSnapshot) {
        for state in GroupState.allCases {
            Gauge(label: "speedy_master_groups", dimensions: [("state", state.rawValue)])
                .record(snapshot.groups.count { $0.state == state })
        }
        for group in snapshot.groups {
            for member in group.members {
                let labels = [("server", member.id), ("group", String(group.id))]
                Gauge(label: "speedy_master_server_up", dimensions: labels).record(member.status.isAbsent ? 0 : 1)
                Gauge(label: "speedy_master_server_heartbeat_age_seconds", dimensions: labels)
                    .record(Double(max(0, member.lastHeartbeatAgeMs)) / 1000)
                Gauge(label: "speedy_master_server_disk_used_bytes", dimensions: labels).record(Double(member.diskUsedBytes))
                Gauge(label: "speedy_master_server_disk_total_bytes", dimensions: labels).record(Double(member.diskTotalBytes))
            }
        }
        for (role, entries) in [("imageserver", snapshot.imageservers ?? []), ("metaserver", snapshot.metaservers ?? [])] {
            for entry in entries {
                let labels = [("role", role), ("id", entry.id)]
                Gauge(label: "speedy_master_role_up", dimensions: labels).record(entry.status == .up ? 1 : 0)
                Gauge(label: "speedy_master_role_heartbeat_age_seconds", dimensions: labels).record(Double(entry.lastHeartbeatAgeMs) / 1000)
            }
        }
        let t = snapshot.totals
        for (kind, total, used, free) in [
            ("raw", t.diskTotalBytes, t.diskUsedBytes, t.diskTotalBytes &- min(t.diskTotalBytes, t.diskUsedBytes)),
            ("usable", t.usableTotalBytes, t.usableUsedBytes, t.usableFreeBytes),
        ] {
            Gauge(label: "speedy_master_capacity_bytes", dimensions: [("kind", kind), ("measure", "total")]).record(Double(total))
            Gauge(label: "speedy_master_capacity_bytes", dimensions: [("kind", kind), ("measure", "used")]).record(Double(used))
            Gauge(label: "speedy_master_capacity_bytes", dimensions: [("kind", kind), ("measure", "free")]).record(Double(free))
        }
    }
}

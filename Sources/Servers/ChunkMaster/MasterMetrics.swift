import CoreMetrics
import Metrics
import ServerSupport
import SpeedyCore

/// The master's own metrics (docs/metrics.md): counters as things happen, and gauges read off
/// the cluster snapshot at each scrape.
struct MasterMetrics: Sendable {
    let heartbeats: Counter
    let fileIdsLeased: Counter
    /// 1 while this master leads, 0 while it stands by.
    let leading: Gauge
    /// Copies of damaged or missing chunks the repairer put back (``AutoRepairer``).
    let chunksRepaired: Counter

    init() {
        RoleMetrics.bootstrap()
        heartbeats = Counter(label: "speedy_master_heartbeats_total")
        fileIdsLeased = Counter(label: "speedy_master_file_ids_leased_total")
        leading = Gauge(label: "speedy_master_leading")
        chunksRepaired = Counter(label: "speedy_master_chunks_repaired_total")
    }

    /// Gauges that come and go with servers, groups and roles.
    let gauges = ScrapedGauges()

    /// Sets the gauges from `snapshot`; with none (a standby), clears them.
    func collect(_ snapshot: ClusterSnapshot?) {
        typealias Reading = ScrapedGauges.Reading
        guard let snapshot else {
            gauges.publish([])
            return
        }
        var readings = GroupState.allCases.map { state in
            Reading("speedy_master_groups", [("state", state.rawValue)], Double(snapshot.groups.count { $0.state == state }))
        }
        for group in snapshot.groups {
            for member in group.members {
                let labels = [("server", member.id), ("group", String(group.id))]
                readings += [
                    Reading("speedy_master_server_up", labels, member.status.isAbsent ? 0 : 1),
                    Reading("speedy_master_server_heartbeat_age_seconds", labels, Double(max(0, member.lastHeartbeatAgeMs)) / 1000),
                    Reading("speedy_master_server_disk_used_bytes", labels, Double(member.diskUsedBytes)),
                    Reading("speedy_master_server_disk_total_bytes", labels, Double(member.diskTotalBytes)),
                ]
            }
        }
        for (role, entries) in [("imageserver", snapshot.imageservers ?? []), ("metaserver", snapshot.metaservers ?? [])] {
            for entry in entries {
                let labels = [("role", role), ("id", entry.id)]
                readings.append(Reading("speedy_master_role_up", labels, entry.status == .up ? 1 : 0))
                readings.append(Reading("speedy_master_role_heartbeat_age_seconds", labels, Double(entry.lastHeartbeatAgeMs) / 1000))
            }
        }
        // Lost chunks and the spares left to replace dead members: 0 rather than absent, to alert on.
        readings.append(Reading("speedy_master_lost_chunks", [], Double(snapshot.lostChunks?.count ?? 0)))
        readings.append(Reading("speedy_master_spare_servers", [], Double((snapshot.spares ?? []).count { !$0.status.isAbsent })))
        let t = snapshot.totals
        for (kind, total, used, free) in [
            ("raw", t.diskTotalBytes, t.diskUsedBytes, t.diskTotalBytes &- min(t.diskTotalBytes, t.diskUsedBytes)),
            ("usable", t.usableTotalBytes, t.usableUsedBytes, t.usableFreeBytes),
        ] {
            for (measure, value) in [("total", total), ("used", used), ("free", free)] {
                readings.append(Reading("speedy_master_capacity_bytes", [("kind", kind), ("measure", measure)], Double(value)))
            }
        }
        gauges.publish(readings)
    }
}

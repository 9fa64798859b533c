import ChunkStorage
import CoreMetrics
import Metrics
import ServerSupport
import SpeedyCore
import Synchronization

/// The chunkserver's metrics (docs/metrics.md), read off its store and traffic counters at each
/// scrape: cumulative totals become Prometheus counters, the rest gauges.
final class ChunkServerMetrics: Sendable {
    private let mirrored = Mutex<[String: UInt64]>([:])
    private let volumeGauges = ScrapedGauges()

    init() { RoleMetrics.bootstrap() }

    /// Sets every metric from `report` and the volume table.
    func collect(_ report: HeartbeatReport, volumes: [VolumeStat]) {
        mirror("speedy_chunkserver_read_bytes_total", report.readBytes)
        mirror("speedy_chunkserver_write_bytes_total", report.writeBytes)
        mirror("speedy_chunkserver_reads_total", report.readOps)
        mirror("speedy_chunkserver_writes_total", report.writeOps)
        mirror("speedy_chunkserver_crc_errors_total", report.crcErrors)
        mirror("speedy_chunkserver_io_errors_total", report.ioErrors)
        mirror("speedy_chunkserver_reclaimed_bytes_total", report.reclaimedBytes ?? 0)
        Gauge(label: "speedy_chunkserver_disk_total_bytes").record(Double(report.diskTotalBytes))
        Gauge(label: "speedy_chunkserver_disk_used_bytes").record(Double(report.diskUsedBytes))
        Gauge(label: "speedy_chunkserver_disk_free_bytes").record(Double(report.diskFreeBytes))
        Gauge(label: "speedy_chunkserver_chunks").record(Double(report.chunkCount))
        Gauge(label: "speedy_chunkserver_chunk_bytes").record(Double(report.chunkBytes))
        Gauge(label: "speedy_chunkserver_pending_writes").record(Double(report.pendingWrites))
        Gauge(label: "speedy_chunkserver_reclaimable_bytes").record(Double(report.reclaimableBytes ?? 0))
        Gauge(label: "speedy_chunkserver_writable").record(report.status == .readWrite ? 1 : 0)
        if let scrub = report.scrub { collect(scrub) }
        // How far each volume file is written, and how much of that is still live; a volume
        // compaction removed leaves /metrics.
        volumeGauges.publish(
            volumes.flatMap { volume in
                let labels = [("volume", String(volume.id))]
                return [
                    ScrapedGauges.Reading("speedy_chunkserver_volume_fill_ratio", labels, volume.size > 0 ? Double(volume.end) / Double(volume.size) : 0),
                    ScrapedGauges.Reading("speedy_chunkserver_volume_live_bytes", labels, Double(volume.liveBytes)),
                ]
            })
    }

    /// Sets the scrub's gauges (none with `--scrub-rate 0`). The last full pass's time is
    /// absent before the first pass ends, so that an alert on its age does not fire on a new server.
    private func collect(_ scrub: ScrubReport) {
        Gauge(label: "speedy_chunkserver_scrub_progress_ratio").record(scrub.fraction)
        Gauge(label: "speedy_chunkserver_scrub_running").record(scrub.running ? 1 : 0)
        Gauge(label: "speedy_chunkserver_scrub_damaged_chunks").record(Double(scrub.damaged.count))
        if let ended = scrub.lastFullPassMs {
            Gauge(label: "speedy_chunkserver_scrub_last_full_pass_timestamp_seconds").record(Double(ended) / 1000)
        }
    }

    /// Moves the counter `label` up to `total` (the process's own count since it started).
    private func mirror(_ label: String, _ total: UInt64) {
        let step = mirrored.withLock { seen -> UInt64 in
            let step = total &- min(total, seen[label] ?? 0)
            seen[label] = max(total, seen[label] ?? 0)
            return step
        }
        if step > 0 { Counter(label: label).increment(by: Int(clamping: step)) }
    }
}

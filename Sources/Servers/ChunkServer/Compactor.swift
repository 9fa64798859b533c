import ChunkStorage
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore

/// Runs volume compaction on a schedule and on request (`POST /v1/compact`), one at a time,
/// and reports each compacted volume to the master's event log.
struct Compactor: Sendable {
    let store: VolumeChunkStore
    let master: MasterClient
    let serverId: String
    let group: UInt32
    /// Sealed volumes with less live data than this fraction are compacted.
    let threshold: Double
    let bytesPerSecond: Int
    let logger: Logger

    func register(on router: Router<SpeedyRequestContext>) {
        router.get("/v1/volumes") { _, _ in try JSONResponse.make(report(compacted: [], error: nil)) }
        router.post("/v1/compact") { request, _ in
            let threshold: Double?
            if let text = request.uri.queryParameters["threshold"] {
                guard let value = Double(String(text)), value.isFinite, (0...1).contains(value) else {
                    throw APIError.badRequest("threshold must be a fraction between 0 and 1, got '\(text.prefix(40))'")
                }
                threshold = value
            } else {
                threshold = nil
            }
            let (done, error) = await run(threshold: threshold)
            return try JSONResponse.make(report(compacted: done, error: error))
        }
    }

    private func report(compacted: [CompactionReport], error: String?) -> VolumesReport {
        let totals = store.compactionTotals
        return VolumesReport(
            volumes: store.volumeStats(), compacted: compacted, totalCompactions: totals.volumes, totalReclaimedBytes: totals.bytes,
            error: error)
    }

    /// Compacts what is under `threshold` (the configured one when nil); errors are logged and returned.
    func run(threshold: Double?) async -> ([CompactionReport], String?) {
        var done: [CompactionReport] = []
        for stat in store.volumeStats() where !stat.active && stat.liveFraction < (threshold ?? self.threshold) {
            do {
                let report = try await store.compact(volume: stat.id, bytesPerSecond: bytesPerSecond)
                done.append(report)
                let message = """
                    volume compacted: \(serverId) volume \(report.volume), \(report.chunksMoved) live chunks moved \
                    (\(ByteSize.format(UInt64(report.bytesMoved)))), \(ByteSize.format(UInt64(report.bytesReclaimed))) given back \
                    in \(report.durationMs) ms
                    """
                try? await master.recordEvent(EventReport(kind: "volume-compacted", serverId: serverId, group: group, message: message))
            } catch {
                logger.warning("compaction of volume \(stat.id) stopped: \(error)")
                return (done, "volume \(stat.id): \(error)")
            }
        }
        return (done, nil)
    }
}

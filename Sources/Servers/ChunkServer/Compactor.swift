import ChunkStorage
import Hummingbird
import Logging
import ServerSupport
import SpeedyClients
import SpeedyCore
import Synchronization

/// Runs volume compaction on a schedule and on request (`POST /v1/compact`), one at a time,
/// and reports each compacted volume to the master's event log.
final class Compactor: Sendable {
    let store: VolumeChunkStore
    let master: MasterClient
    let serverId: String
    let membership: GroupMembership
    /// Sealed volumes with less live data than this fraction are compacted.
    let threshold: Double
    let bytesPerSecond: Int
    let logger: Logger

    init(
        store: VolumeChunkStore, master: MasterClient, serverId: String, membership: GroupMembership, threshold: Double, bytesPerSecond: Int,
        logger: Logger
    ) {
        self.store = store
        self.master = master
        self.serverId = serverId
        self.membership = membership
        self.threshold = threshold
        self.bytesPerSecond = bytesPerSecond
        self.logger = logger
    }

    func register(on router: Router<SpeedyRequestContext>) {
        router.get("/v1/volumes") { _, _ in try JSONResponse.make(self.report(compacted: [], error: nil)) }
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
            let (done, error) = await self.run(threshold: threshold)
            return try JSONResponse.make(self.report(compacted: done, error: error))
        }
    }

    private func report(compacted: [CompactionReport], error: String?) -> VolumesReport {
        let totals = store.compactionTotals
        return VolumesReport(
            volumes: store.volumeStats(), compacted: compacted, totalCompactions: totals.volumes, totalReclaimedBytes: totals.bytes,
            error: error)
    }

    /// Volumes whose compaction failed (a chunk that fails its CRC, say) and when: the schedule
    /// leaves them alone for an hour rather than re-reading them every minute.
    let failed = Mutex<[UInt32: ContinuousClock.Instant]>([:])

    /// Compacts what is under `threshold` (the configured one when nil; a request also retries
    /// volumes that failed lately); errors are logged, the others go on, and the errors are returned.
    func run(threshold: Double?) async -> ([CompactionReport], String?) {
        var done: [CompactionReport] = []
        var errors: [String] = []
        let skip = failed.withLock { failures in
            failures = failures.filter { ContinuousClock.now - $0.value < .seconds(3600) }
            return threshold == nil ? Set(failures.keys) : []
        }
        for stat in store.volumeStats() where !stat.active && stat.liveFraction < (threshold ?? self.threshold) && !skip.contains(stat.id) {
            do {
                let report = try await store.compact(volume: stat.id, bytesPerSecond: bytesPerSecond)
                done.append(report)
                let message = """
                    volume compacted: \(serverId) volume \(report.volume), \(report.chunksMoved) live chunks moved \
                    (\(ByteSize.format(UInt64(report.bytesMoved)))), \(ByteSize.format(UInt64(report.bytesReclaimed))) given back \
                    in \(report.durationMs) ms
                    """
                try? await master.recordEvent(EventReport(kind: "volume-compacted", serverId: serverId, group: membership.group, message: message))
            } catch {
                logger.warning("compaction of volume \(stat.id) stopped: \(error)")
                if case .readOnly = error {} else { failed.withLock { $0[stat.id] = .now } }
                errors.append("volume \(stat.id): \(error)")
            }
        }
        return (done, errors.isEmpty ? nil : errors.joined(separator: "; "))
    }
}

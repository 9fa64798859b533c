import ChunkStorage
import CoreMetrics
import Foundation
import Logging
import ServerSupport
import ServiceLifecycle
import SpeedyCore
import Synchronization

/// Reads every chunk this server holds in the background and checks its CRC, so that a bit that
/// rots is found while the other members still hold good copies, not when a pull needs it.
///
/// Like HDFS's block scanner: a pass reads the chunks in file id order at most at `rate`
/// (a quarter of it while clients keep the disk busy), and a new pass starts `every` after the
/// last one started. A pass that would not finish by then speeds up to finish in time. Where
/// the pass stands is saved in `scrub.json` every few seconds, so a restart goes on from there.
///
/// A chunk that fails its CRC or its read, here or on a client's read, is damaged: it is
/// reported at once (`onDamage`: an event and a heartbeat), listed in every heartbeat until a
/// read of it succeeds again (the master copied a good one over it) or it is gone.
final class Scrubber: Service, Sendable {
    /// How fast and how often to scrub.
    struct Settings: Sendable {
        /// Bytes per second at most while the disk is otherwise idle.
        var rate: Int
        /// A pass starts this long after the previous one started.
        var every: Duration
        /// The share of `rate` used while clients read or write.
        var busyShare = 0.25
    }

    /// The part of the scrub that survives a restart (`scrub.json`).
    struct Progress: Codable, Equatable {
        var passStartedMs: Int64 = 0
        var running = false
        var position: UInt64 = 0
        var checkedChunks: UInt64 = 0
        var checkedBytes: UInt64 = 0
        var passBytes: UInt64 = 0
        var lastFullPassMs: Int64?
        var passes: UInt64 = 0
        var damaged: Set<UInt64> = []
        var damagedFound: UInt64 = 0
    }

    let store: any ChunkStore
    /// The group whose chunks are scrubbed (a waiting spare's is empty).
    let membership: GroupMembership
    let settings: Settings
    let path: String
    let counters: TrafficCounters
    let logger: Logger
    /// Called once for each newly damaged chunk, with why; the chunkserver tells the master.
    let onDamage: @Sendable (UInt64, String) async -> Void
    let progress: Mutex<Progress>
    /// The pace the last chunk was read at, for the heartbeat.
    private let pace = Mutex<Double>(0)

    init(
        store: any ChunkStore, membership: GroupMembership, settings: Settings, directory: String, counters: TrafficCounters, logger: Logger,
        onDamage: @escaping @Sendable (UInt64, String) async -> Void
    ) {
        self.store = store
        self.membership = membership
        self.settings = settings
        self.path = directory + "/scrub.json"
        self.counters = counters
        self.logger = logger
        self.onDamage = onDamage
        var saved = Progress()
        if let data = FileManager.default.contents(atPath: path) {
            do { saved = try JSONDecoder().decode(Progress.self, from: data) } catch { logger.warning("\(path) unreadable, scrubbing from the start: \(error)") }
        }
        self.progress = Mutex(saved)
    }

    /// What the heartbeat says of the scrub.
    func report() -> ScrubReport {
        let p = progress.withLock { $0 }
        let damaged = Array(p.damaged.sorted().prefix(ScrubReport.maxDamagedListed))
        return ScrubReport(
            passStartedMs: p.passStartedMs, running: p.running, position: p.position, checkedChunks: p.checkedChunks,
            checkedBytes: p.checkedBytes, passBytes: p.passBytes, lastFullPassMs: p.lastFullPassMs, passes: p.passes,
            bytesPerSec: p.running ? pace.withLock { $0 } : 0, damaged: damaged, damagedFound: p.damagedFound)
    }

    /// Scrubs until the task is cancelled or the server shuts down.
    func run() async throws {
        // Graceful shutdown is not cancellation: turn it into one, which ends sleeps and the loop.
        await cancelWhenGracefulShutdown { await self.scrub() }
    }

    private func scrub() async {
        var lastSave = ContinuousClock.now
        var lastRecheck = ContinuousClock.now
        var busy = BusyDetector(counters: counters)
        while !Task.isCancelled {
            if ContinuousClock.now - lastRecheck > .seconds(2) {
                await recheckDamaged()
                lastRecheck = .now
            }
            if ContinuousClock.now - lastSave > .seconds(5) {
                save()
                lastSave = .now
            }
            guard startPassIfDue() else {
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            let position = progress.withLock { $0.position }
            let batch = store.list(group: membership.group, after: position, limit: 64)
            if batch.isEmpty {
                finishPass()
                save()
                continue
            }
            for info in batch {
                if Task.isCancelled { break }
                let started = ContinuousClock.now
                await check(info)
                let pace = self.pace(busy: busy.isBusy())
                self.pace.withLock { $0 = pace }
                let due = Duration.seconds(Double(info.length) / pace) - (ContinuousClock.now - started)
                if due > .zero { try? await Task.sleep(for: due) }
            }
        }
        save()
    }

    /// Starts a pass when none runs and the last one started `every` ago; whether one runs now.
    private func startPassIfDue() -> Bool {
        let now = currentTimeMillis()
        let chunkBytes = store.usage().chunkBytes
        return progress.withLock { p in
            if p.running { return true }
            guard p.passes == 0 || now - p.passStartedMs >= settings.every.milliseconds else { return false }
            p = Progress(
                passStartedMs: now, running: true, lastFullPassMs: p.lastFullPassMs, passes: p.passes, damaged: p.damaged,
                damagedFound: p.damagedFound)
            p.passBytes = chunkBytes
            return true
        }
    }

    private func finishPass() {
        let p = progress.withLock { p in
            p.running = false
            p.lastFullPassMs = currentTimeMillis()
            p.passes += 1
            return p
        }
        logger.info("scrub pass \(p.passes) done: \(p.checkedChunks) chunks, \(ByteSize.format(p.checkedBytes)) read, \(p.damaged.count) damaged")
    }

    /// Reads one chunk (the store checks its CRC) and records the outcome.
    private func check(_ info: ChunkInfo) async {
        let key = ChunkKey(group: membership.group, fileId: info.fileId)
        var why: String?
        do {
            _ = try await store.get(key)
        } catch .notFound {
            // Deleted since the listing: nothing to check.
        } catch .closed {
            return  // shutting down
        } catch {
            why = error.description
        }
        progress.withLock { p in
            p.position = info.fileId
            p.checkedChunks += 1
            p.checkedBytes += UInt64(info.length)
        }
        // Made at each use, not at init: the scrubber may be made before the metrics backend.
        Counter(label: "speedy_chunkserver_scrub_checked_bytes_total").increment(by: Int(info.length))
        if let why { await noteDamaged(info.fileId, why: "found by scrub: \(why)") }
    }

    /// Records a damaged chunk (from the scrub or a client's read); reports it if it is new.
    func noteDamaged(_ fileId: UInt64, why: String) async {
        let isNew = progress.withLock { p in
            guard p.damaged.insert(fileId).inserted else { return false }
            p.damagedFound += 1
            return true
        }
        guard isNew else { return }
        logger.error("chunk \(membership.group)/\(fileId) is damaged: \(why)")
        save()
        await onDamage(fileId, why)
    }

    /// Reads each damaged chunk again: one that reads clean was repaired (a good copy was put
    /// over it), one that is gone was deleted; both leave the list.
    private func recheckDamaged() async {
        let damaged = progress.withLock { $0.damaged }
        for fileId in damaged {
            let key = ChunkKey(group: membership.group, fileId: fileId)
            let healed: Bool
            do {
                _ = try await store.get(key)
                healed = true
            } catch .notFound {
                healed = true
            } catch .closed {
                return
            } catch {
                healed = false
            }
            if healed {
                progress.withLock { _ = $0.damaged.remove(fileId) }
                logger.notice("chunk \(membership.group)/\(fileId) reads clean again (or is gone): no longer damaged")
            }
        }
    }

    /// The pace for the next chunk: the configured rate (a share of it while clients are busy),
    /// but never slower than what finishes the pass by its deadline.
    func pace(busy: Bool) -> Double {
        let p = progress.withLock { $0 }
        let base = Double(settings.rate) * (busy ? settings.busyShare : 1)
        let secondsLeft = max(1, Double(p.passStartedMs + settings.every.milliseconds - currentTimeMillis()) / 1000)
        let bytesLeft = Double(p.passBytes > p.checkedBytes ? p.passBytes - p.checkedBytes : 0)
        return max(base, bytesLeft / secondsLeft, 1)
    }

    /// Writes the progress where a restart finds it. Not fsynced: losing the last seconds of
    /// progress to a power cut re-reads a few chunks, nothing worse; the rename keeps it whole.
    private func save() {
        let p = progress.withLock { $0 }
        do {
            try JSONEncoder().encode(p).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.warning("cannot save scrub progress to \(path): \(error)")
        }
    }
}

/// Whether clients have used the disk in the last second, from the traffic counters.
private struct BusyDetector {
    let counters: TrafficCounters
    var lastOps: UInt64 = 0
    var lastSample = ContinuousClock.now
    var busy = false

    init(counters: TrafficCounters) {
        self.counters = counters
        lastOps = Self.ops(counters)
    }

    static func ops(_ counters: TrafficCounters) -> UInt64 {
        counters.readOps.load(ordering: .relaxed) &+ counters.writeOps.load(ordering: .relaxed)
    }

    mutating func isBusy() -> Bool {
        guard ContinuousClock.now - lastSample >= .seconds(1) else { return busy }
        let ops = Self.ops(counters)
        busy = ops != lastOps
        lastOps = ops
        lastSample = .now
        return busy
    }
}

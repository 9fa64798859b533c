import Foundation
import Logging
import ServiceLifecycle
import SpeedyCore
import Synchronization

/// Tells the tracker what this agent holds: a full announce at start and every interval the
/// tracker asks for (so a restarted tracker learns the swarm back within one interval), and
/// between them, every quarter second, the blobs whose chunks changed (a chunk claimed or
/// arrived, a blob cached, evicted or failed).
final class SwarmAnnouncer: Service, Sendable {
    /// What the agent holds of a blob now; an empty bitfield when nothing.
    typealias Holdings = @Sendable (_ only: Set<Digest>?) -> [SwarmAnnounce.Holding]

    private struct State {
        var pending: Set<Digest> = []
        var interval: Duration = .seconds(15)
        var lastFull: ContinuousClock.Instant?
    }

    private let tracker: TrackerClient
    private let address: String
    private let served: @Sendable () -> UInt64
    private let holdings: Mutex<Holdings?> = Mutex(nil)
    private let state = Mutex(State())
    private let logger: Logger
    private let failing = Mutex(false)

    /// Announces to `tracker` that the agent serves peers at `address`; `served` is the bytes
    /// sent to peers so far.
    init(tracker: TrackerClient, address: String, served: @escaping @Sendable () -> UInt64, logger: Logger) {
        self.tracker = tracker
        self.address = address
        self.served = served
        self.logger = logger
    }

    /// Sets where holdings come from (the downloads and the cache, made after the announcer).
    func source(_ holdings: @escaping Holdings) { self.holdings.withLock { $0 = holdings } }

    /// Marks `digest` to be announced again soon.
    func changed(_ digest: Digest) { state.withLock { _ = $0.pending.insert(digest) } }

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await announceDue()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(250)) }
        }
    }

    /// Announces what the agent holds of `digest` now, without waiting for the next tick (a
    /// download's fresh claims); on failure the next tick tries again.
    func announceNow(_ digest: Digest) async {
        guard let holdings = holdings.withLock({ $0 }) else { return }
        let announce = SwarmAnnounce(agent: tracker.signer.agent, address: address, full: false, blobs: holdings([digest]), servedBytes: served())
        do {
            _ = try await tracker.announce(announce)
        } catch {
            changed(digest)
        }
    }

    /// Sends a full announce when one is due, else the pending changes, if any.
    func announceDue() async {
        let now = ContinuousClock.now
        let (full, pending) = state.withLock { state -> (Bool, Set<Digest>) in
            let due = state.lastFull.map { now - $0 >= state.interval } ?? true
            let pending = state.pending
            state.pending = []
            return (due, pending)
        }
        guard full || !pending.isEmpty, let holdings = holdings.withLock({ $0 }) else { return }
        let announce = SwarmAnnounce(
            agent: tracker.signer.agent, address: address, full: full,
            blobs: Array(holdings(full ? nil : pending).prefix(Swarm.maxBlobsPerAnnounce)), servedBytes: served())
        do {
            let reply = try await tracker.announce(announce)
            state.withLock { state in
                if full { state.lastFull = now }
                state.interval = .seconds(min(max(reply.intervalSeconds, 1), 300))
            }
            if failing.withLock({ $0 }) { logger.notice("the tracker takes announces again") }
            failing.withLock { $0 = false }
        } catch {
            // A tracker that comes back gets everything at once: a full announce next.
            state.withLock { state in
                state.lastFull = nil
                state.pending.formUnion(pending)
            }
            if !failing.withLock({ $0 }) { logger.warning("announce to the tracker failed: \(error)") }
            failing.withLock { $0 = true }
        }
    }
}

import SpeedyCore
import Synchronization

/// The blobs this agent is downloading now, so that several pulls of one blob on the host
/// fetch it once: the first claims it, the others wait (a bounded time) for it to reach the cache.
final class InFlightFetches: Sendable {
    private struct State {
        var waiters: [Digest: [Int: CheckedContinuation<Void, Never>]] = [:]
        var nextId = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Claims `digest`; true when no one else is fetching it (the caller must ``release(_:)`` it).
    func claim(_ digest: Digest) -> Bool {
        state.withLock { state in
            guard state.waiters[digest] == nil else { return false }
            state.waiters[digest] = [:]
            return true
        }
    }

    /// Ends the claim on `digest` and wakes whoever waits for it.
    func release(_ digest: Digest) {
        let waiting = state.withLock { $0.waiters.removeValue(forKey: digest) } ?? [:]
        for continuation in waiting.values { continuation.resume() }
    }

    /// Waits until the fetch of `digest` ends, or `limit` passes, or the task is cancelled.
    func wait(for digest: Digest, atMost limit: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitUnbounded(digest) }
            group.addTask { try? await Task.sleep(for: limit) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitUnbounded(_ digest: Digest) async {
        let id = state.withLock { state in
            state.nextId += 1
            return state.nextId
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let registered = state.withLock { state in
                    guard state.waiters[digest] != nil, !Task.isCancelled else { return false }
                    state.waiters[digest]![id] = continuation
                    return true
                }
                if !registered { continuation.resume() }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiters[digest]?.removeValue(forKey: id) }
            continuation?.resume()
        }
    }
}

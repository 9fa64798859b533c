import Synchronization

/// Runs async bodies one at a time, in the order they asked: a lock that may be held across
/// an `await` (a database commit, say), which `Mutex` must never be. Waiters are not
/// cancellable; keep what runs under it short.
public final class AsyncSerialLock: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    /// Creates an unheld lock.
    public init() {}

    /// Waits for the lock, runs `body` holding it, and releases it however `body` ends.
    public func run<T, Failure: Error>(_ body: () async throws(Failure) -> T) async throws(Failure) -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let free = state.withLock { s in
                if s.held {
                    s.waiters.append(waiter)
                    return false
                }
                s.held = true
                return true
            }
            if free { waiter.resume() }
        }
    }

    /// Hands the lock to the oldest waiter, or frees it.
    private func release() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard !s.waiters.isEmpty else {
                s.held = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

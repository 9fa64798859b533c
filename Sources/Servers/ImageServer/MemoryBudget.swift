import HTTPTypes
import Synchronization

/// An async semaphore counted in bytes: every chunk buffer is taken from it first, so the
/// imageserver's memory stays bounded however many clients push and pull at once.
final class MemoryBudget: Sendable {
    private struct State {
        var available: Int
        var waiters: [(bytes: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>
    let capacity: Int

    init(bytes: Int) {
        capacity = bytes
        state = Mutex(State(available: bytes))
    }

    /// Waits until `bytes` are free and takes them (first come, first served).
    func acquire(_ bytes: Int) async {
        let bytes = min(bytes, capacity)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { s -> Bool in
                if s.waiters.isEmpty && s.available >= bytes {
                    s.available -= bytes
                    return true
                }
                s.waiters.append((bytes, continuation))
                return false
            }
            if granted { continuation.resume() }
        }
    }

    /// Gives `bytes` back and wakes the waiters that now fit.
    func release(_ bytes: Int) {
        let bytes = min(bytes, capacity)
        let woken = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.available += bytes
            var ready: [CheckedContinuation<Void, Never>] = []
            while let first = s.waiters.first, first.bytes <= s.available {
                s.available -= first.bytes
                ready.append(first.continuation)
                s.waiters.removeFirst()
            }
            return ready
        }
        for continuation in woken { continuation.resume() }
    }

    /// Runs `body` holding `bytes` of the budget.
    func with<T>(_ bytes: Int, _ body: () async throws -> T) async rethrows -> T {
        await acquire(bytes)
        defer { release(bytes) }
        return try await body()
    }
}

import Synchronization

/// An async semaphore counted in bytes: every chunk buffer is taken from it first, so the
/// imageserver's memory stays bounded however many clients push and pull at once.
///
/// It is shared fairly: one client (an IP address, or a user once logged in) holds at most
/// `perClient` bytes, so one client's many requests cannot take it all; and nobody waits forever:
/// a request that cannot get its bytes within `waitLimit` fails with ``BudgetExhausted``, which
/// the registry answers with 503 and Retry-After.
final class MemoryBudget: Sendable {
    private struct Waiter {
        var id: UInt64
        var bytes: Int
        var client: String
        var continuation: CheckedContinuation<Bool, Never>
    }

    private struct State {
        var available: Int
        var held: [String: Int] = [:]
        var waiters: [Waiter] = []
        var nextWaiter: UInt64 = 0
        /// Waits decided on but not queued yet, and those of them that timed out or were
        /// cancelled meanwhile (they end as soon as they would be queued).
        var expecting: Set<UInt64> = []
        var abandoned: Set<UInt64> = []

        /// Grants waiters in arrival order; one kept waiting only by its own client's cap does
        /// not hold up the others, one waiting for the shared pool does (no starvation of big asks).
        mutating func grantReady(perClient: Int) -> [CheckedContinuation<Bool, Never>] {
            var ready: [CheckedContinuation<Bool, Never>] = []
            var index = 0
            while index < waiters.count {
                let waiter = waiters[index]
                if held[waiter.client, default: 0] + waiter.bytes > perClient {
                    index += 1
                    continue
                }
                guard waiter.bytes <= available else { break }
                available -= waiter.bytes
                held[waiter.client, default: 0] += waiter.bytes
                ready.append(waiter.continuation)
                waiters.remove(at: index)
            }
            return ready
        }
    }

    private let state: Mutex<State>
    /// Bytes in all.
    let capacity: Int
    /// Bytes one client may hold at once.
    let perClient: Int
    /// How long a request waits for bytes before it is refused.
    let waitLimit: Duration

    /// - Parameters:
    ///   - perClient: at most this many bytes per client (default: half the budget).
    ///   - waitLimit: a request still waiting after this long fails with ``BudgetExhausted``.
    init(bytes: Int, perClient: Int? = nil, waitLimit: Duration = .seconds(10)) {
        capacity = bytes
        self.perClient = min(perClient ?? bytes / 2, bytes)
        self.waitLimit = waitLimit
        state = Mutex(State(available: bytes))
    }

    /// Bytes free now (for tests and metrics).
    var available: Int { state.withLock { $0.available } }

    /// Takes `bytes` for `client`, waiting (in arrival order) at most ``waitLimit``.
    func acquire(_ bytes: Int, client: String) async throws(BudgetExhausted) {
        let bytes = clamp(bytes)
        let (id, granted) = state.withLock { s -> (UInt64, Bool) in
            // The fast path: nobody waits and it fits.
            if s.waiters.isEmpty, s.available >= bytes, s.held[client, default: 0] + bytes <= perClient {
                s.available -= bytes
                s.held[client, default: 0] += bytes
                return (0, true)
            }
            s.nextWaiter += 1
            s.expecting.insert(s.nextWaiter)
            return (s.nextWaiter, false)
        }
        if granted { return }
        let limit = waitLimit
        let timer = Task { [weak self] in
            try? await Task.sleep(for: limit)
            self?.giveUp(id)
        }
        defer { timer.cancel() }
        let ok = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let (woken, gaveUp) = state.withLock { s -> ([CheckedContinuation<Bool, Never>], Bool) in
                    if s.abandoned.remove(id) != nil { return ([], true) }
                    s.expecting.remove(id)
                    s.waiters.append(Waiter(id: id, bytes: bytes, client: client, continuation: continuation))
                    return (s.grantReady(perClient: perClient), false)
                }
                if gaveUp { continuation.resume(returning: false) }
                for continuation in woken { continuation.resume(returning: true) }
            }
        } onCancel: {
            giveUp(id)
        }
        guard ok else { throw BudgetExhausted(waited: limit) }
    }

    /// Gives `client`'s `bytes` back and wakes the waiters that now fit.
    func release(_ bytes: Int, client: String) {
        let bytes = clamp(bytes)
        let woken = state.withLock { s -> [CheckedContinuation<Bool, Never>] in
            s.available += bytes
            let left = s.held[client, default: 0] - bytes
            s.held[client] = left > 0 ? left : nil
            return s.grantReady(perClient: perClient)
        }
        for continuation in woken { continuation.resume(returning: true) }
    }

    /// Runs `body` holding `bytes` of the budget.
    func with<T>(_ bytes: Int, client: String, _ body: () async throws -> T) async throws -> T {
        try await acquire(bytes, client: client)
        defer { release(bytes, client: client) }
        return try await body()
    }

    /// Ends waiter `id`'s wait without its bytes (timed out or cancelled), if it still waits.
    private func giveUp(_ id: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<Bool, Never>? in
            guard let index = s.waiters.firstIndex(where: { $0.id == id }) else {
                // Not queued yet: the wait ends as soon as it would start. (Granted: nothing to do.)
                if s.expecting.remove(id) != nil { s.abandoned.insert(id) }
                return nil
            }
            return s.waiters.remove(at: index).continuation
        }
        waiter?.resume(returning: false)
    }

    private func clamp(_ bytes: Int) -> Int { min(max(bytes, 0), perClient) }
}

/// No chunk buffer could be had in time: the imageserver is as busy as its memory allows.
struct BudgetExhausted: Error, Sendable {
    /// How long the request waited.
    let waited: Duration
}

/// Bytes taken from a ``MemoryBudget``, given back exactly once: by ``release()``, or when the
/// reservation is dropped (a response body that is never written cannot keep its bytes).
final class BudgetReservation: Sendable {
    private let budget: MemoryBudget
    /// Bytes held.
    let bytes: Int
    private let client: String
    private let released = Atomic<Bool>(false)

    fileprivate init(budget: MemoryBudget, bytes: Int, client: String) {
        self.budget = budget
        self.bytes = bytes
        self.client = client
    }

    /// Gives the bytes back (later calls do nothing).
    func release() {
        if !released.exchange(true, ordering: .acquiringAndReleasing) { budget.release(bytes, client: client) }
    }

    deinit { release() }
}

extension MemoryBudget {
    /// Takes `bytes` for `client` as a reservation that gives them back when released or dropped.
    func reserve(_ bytes: Int, client: String) async throws(BudgetExhausted) -> BudgetReservation {
        try await acquire(bytes, client: client)
        return BudgetReservation(budget: self, bytes: bytes, client: client)
    }
}

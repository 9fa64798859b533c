import Synchronization

/// Runs one piece of work per key at a time: callers that ask for a key while its work runs
/// share that run's result instead of starting their own (twenty pulls of one cold image make
/// one upstream request per manifest and blob).
///
/// The work runs in a task of its own, so a caller that leaves (a client that hangs up) neither
/// cancels it nor loses it for the others; it ends with its own timeouts.
final class SingleFlight<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let running = Mutex<[Key: Task<Value, any Error>]>([:])

    /// Creates an empty set of runs.
    init() {}

    /// The result of `work` for `key`: of the run in progress if there is one, else of a new one.
    func run(_ key: Key, _ work: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let task = running.withLock { running in
            if let task = running[key] { return task }
            // Made under the lock: its removal (below) cannot come before its insertion.
            let task = Task {
                defer { self.finished(key) }
                return try await work()
            }
            running[key] = task
            return task
        }
        return try await task.value
    }

    /// Keys with work in progress now.
    var inProgress: Int { running.withLock { $0.count } }

    private func finished(_ key: Key) {
        _ = running.withLock { $0.removeValue(forKey: key) }
    }
}

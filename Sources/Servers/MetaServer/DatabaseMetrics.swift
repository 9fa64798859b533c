import CoreMetrics
import Metrics
import SpeedyCore
import ServerSupport
import Synchronization

/// Latency of the metaserver's database operations, one histogram per store method
/// (`operation="blob"`, `"putManifest"`…), and the count of failed ones.
enum DatabaseMetrics {
    private static let timers = Mutex<[String: Metrics.Timer]>([:])

    /// Database operations that failed (the store answered `unavailable`).
    static let failures: Counter = {
        RoleMetrics.bootstrap()
        return Counter(label: "speedy_metaserver_database_failures_total")
    }()

    /// The timer of `function` (a `#function` name: its part before the parenthesis).
    static func timer(_ function: String) -> Metrics.Timer {
        let operation = String(function.prefix { $0 != "(" })
        return timers.withLock { timers in
            if let timer = timers[operation] { return timer }
            RoleMetrics.bootstrap()
            let timer = Metrics.Timer(label: "speedy_metaserver_database_seconds", dimensions: [("operation", operation)])
            timers[operation] = timer
            return timer
        }
    }

    /// Runs one store operation: times it in `speedy_metaserver_database_seconds` by `operation`,
    /// passes ``MetadataError``s through, and turns any other failure into the error `classify`
    /// says (`.unavailable` ones are counted in the failures).
    static func measure<T>(
        _ operation: String, classify: (any Error) -> MetadataError, _ body: () async throws -> T
    ) async throws(MetadataError) -> T {
        let started = ContinuousClock.now
        defer { timer(operation).recordElapsed(since: started) }
        do {
            return try await body()
        } catch let error as MetadataError {
            throw error
        } catch {
            let classified = classify(error)
            if case .unavailable = classified { failures.increment() }
            throw classified
        }
    }
}

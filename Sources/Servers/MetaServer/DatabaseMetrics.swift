import CoreMetrics
import Metrics
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
}

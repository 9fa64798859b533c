import Foundation
import SpeedyCore

/// Throughput and latency percentiles of one benchmark phase.
struct PhaseResult {
    let name: String
    let operations: Int
    let bytes: Int
    let seconds: Double
    let latenciesMs: [Double]
    /// Wall-clock start and end (seconds since 1970), to add up phases run on several hosts.
    var startedAt: Double = 0
    var endedAt: Double = 0

    var megabytesPerSecond: Double { Double(bytes) / 1_000_000 / seconds }

    func percentile(_ p: Double) -> Double {
        guard !latenciesMs.isEmpty else { return 0 }
        let sorted = latenciesMs.sorted()
        let index = min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)
        return sorted[max(0, index)]
    }

    var line: String {
        let f = { (x: Double) in ByteSize.formatDecimal(x, places: 1) }
        return "\(name.padding(20)) \(String(operations).padding(6)) ops  \(f(megabytesPerSecond).padding(8)) MB/s  p50 \(f(percentile(0.5))) ms  p99 \(f(percentile(0.99))) ms"
    }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
}

/// Seconds elapsed while `body` runs.
func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let clock = ContinuousClock()
    let start = clock.now
    let value = try await body()
    let elapsed = clock.now - start
    return (value, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// Runs `count` operations with `concurrency` in flight, timing each.
enum Phase {
    static func run(name: String, count: Int, concurrency: Int, bytesEach: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async throws -> PhaseResult {
        let clock = ContinuousClock()
        let startedAt = Date().timeIntervalSince1970
        let (latencies, seconds) = try await timed {
            try await withThrowingTaskGroup(of: [Double].self) { group in
                for worker in 0..<min(concurrency, count) {
                    group.addTask {
                        var latencies: [Double] = []
                        var i = worker
                        while i < count {
                            let start = clock.now
                            try await body(i)
                            let d = clock.now - start
                            latencies.append(Double(d.components.seconds) * 1000 + Double(d.components.attoseconds) / 1e15)
                            i += concurrency
                        }
                        return latencies
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
        }
        return PhaseResult(
            name: name, operations: count, bytes: count * bytesEach, seconds: seconds, latenciesMs: latencies,
            startedAt: startedAt, endedAt: Date().timeIntervalSince1970)
    }
}

import Foundation
import SpeedyClients
import SpeedyCore

/// A one-line progress bar on standard error (only when it is a terminal): items, bytes, rate and
/// time left.
public final class ProgressBar: @unchecked Sendable {
    private let enabled: Bool
    private let started = Date()
    private var lastDraw = Date.distantPast
    private let lock = NSLock()
    private let job: JobReporter?

    /// A bar that draws when `enabled` and standard error is a terminal, and passes every update
    /// on to `job` (which reports to the master whether or not the bar draws).
    public init(enabled: Bool, job: JobReporter? = nil) {
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
        self.job = job
    }

    /// Redraws (at most ten times a second) with `done` of `total` items and `bytes` of `totalBytes`.
    public func update(done: Int, total: Int, bytes: UInt64, totalBytes: UInt64? = nil, label: String = "chunks") {
        job?.progress(done: done, total: total, bytes: bytes, totalBytes: totalBytes)
        guard enabled, total > 0 else { return }
        lock.withLock {
            let now = Date()
            guard done == total || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
            lastDraw = now
            let width = 30
            let fraction = totalBytes.map { $0 > 0 ? Double(bytes) / Double($0) : 1 } ?? Double(done) / Double(total)
            let filled = min(width, Int(Double(width) * fraction))
            let seconds = max(0.001, now.timeIntervalSince(started))
            let rate = Double(bytes) / seconds
            var line = "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) \(label)  "
                + ByteSize.format(rate) + "/s"
            if fraction > 0, fraction < 1 {
                let left = Int(seconds / fraction - seconds)
                line += String(format: "  ETA %d:%02d", left / 60, left % 60)
            }
            // Erase what a longer earlier line left behind.
            FileHandle.standardError.write(Data((line + "\u{1B}[K").utf8))
        }
    }

    /// Ends the line.
    public func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Paces work to a byte rate: call ``wait(after:)`` with the running total.
public struct RateLimiter: Sendable {
    private let bytesPerSecond: Double
    private let started = ContinuousClock.now

    /// A limiter for `megabytesPerSecond` (0: no limit).
    public init(megabytesPerSecond: Double) {
        bytesPerSecond = megabytesPerSecond * 1_000_000
    }

    /// Sleeps until `bytes` in total are within the rate.
    public func wait(after bytes: UInt64) async throws {
        guard bytesPerSecond > 0 else { return }
        let due = Double(bytes) / bytesPerSecond
        let elapsed = ContinuousClock.now - started
        let ahead = due - Double(elapsed.components.seconds) - Double(elapsed.components.attoseconds) / 1e18
        if ahead > 0 { try await Task.sleep(for: .milliseconds(Int64(ahead * 1000))) }
    }
}

import Synchronization

/// Bounds the bytes per second an agent sends to its peers (`--upload-rate`), over all uploads
/// at once: each piece books the next free stretch of the link's time and waits for it, first
/// come first served, so the pace holds however many peers ask at once.
final class UploadPacer: Sendable {
    /// Bytes per second; nil: no bound.
    let bytesPerSecond: UInt64?
    /// How far ahead of real time sending may run (a short burst at the start).
    private let slack: Duration
    private let nextFree = Mutex<ContinuousClock.Instant?>(nil)

    /// A pacer of `bytesPerSecond` (nil: unpaced).
    init(bytesPerSecond: UInt64?, slack: Duration = .milliseconds(100)) {
        self.bytesPerSecond = bytesPerSecond.flatMap { $0 > 0 ? $0 : nil }
        self.slack = slack
    }

    /// Waits until `bytes` more may be sent.
    func take(_ bytes: Int) async throws {
        guard let rate = bytesPerSecond, bytes > 0 else { return }
        let cost = Duration.nanoseconds(Int64(Double(bytes) / Double(rate) * 1e9))
        let now = ContinuousClock.now
        let start = nextFree.withLock { next -> ContinuousClock.Instant in
            let start = max(next ?? now, now - slack)
            next = start + cost
            return start
        }
        if start > now { try await Task.sleep(until: start, clock: .continuous) }
    }
}

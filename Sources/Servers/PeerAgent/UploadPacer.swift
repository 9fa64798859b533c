import Synchronization

/// Bounds the bytes per second an agent sends to its peers (`--upload-rate`), over all uploads
/// at once: each piece books the next free stretch of the link's time and waits for it, first
/// come first served, so the pace holds however many peers ask at once.
///
/// The bytes sent by any instant `t` since the pacer began at `t0` are at most
/// `rate × (t − t0 + slack)` plus the piece being sent (``book(_:now:)`` is that rule, without a
/// clock, for tests).
final class UploadPacer: Sendable {
    /// Bytes per second; nil: no bound.
    let bytesPerSecond: UInt64?
    /// How far ahead of real time sending may run: a short burst at the start, or after a pause.
    private let slack: Duration
    private let nextFree = Mutex<ContinuousClock.Instant?>(nil)

    /// A pacer of `bytesPerSecond` (nil or 0: unpaced).
    init(bytesPerSecond: UInt64?, slack: Duration = .milliseconds(100)) {
        self.bytesPerSecond = bytesPerSecond.flatMap { $0 > 0 ? $0 : nil }
        self.slack = max(slack, .zero)
    }

    /// Waits until `bytes` more may be sent.
    func take(_ bytes: Int) async throws {
        let now = ContinuousClock.now
        guard let start = book(bytes, now: now), start > now else { return }
        try await Task.sleep(until: start, clock: .continuous)
    }

    /// Books `bytes` asked for at `now`: the instant they may go (at once when that is not after
    /// `now`), or nil when the pacer is unpaced or there is nothing to send. The next booking
    /// starts where this one ends, but never further back than `slack` before its own `now`, so a
    /// pause saves up no more than `slack` of sending.
    func book(_ bytes: Int, now: ContinuousClock.Instant) -> ContinuousClock.Instant? {
        guard let rate = bytesPerSecond, bytes > 0 else { return nil }
        let cost = Self.cost(of: bytes, rate: rate)
        let earliest = now - slack
        return nextFree.withLock { next -> ContinuousClock.Instant in
            let start = max(next ?? earliest, earliest)
            next = start + cost
            return start
        }
    }

    /// How long `bytes` take at `rate` bytes a second (at most a year: no overflow however large).
    static func cost(of bytes: Int, rate: UInt64) -> Duration {
        let nanoseconds = Double(bytes) / Double(rate) * 1e9
        return .nanoseconds(Int64(min(nanoseconds, 365 * 86_400 * 1e9)))
    }
}

import SpeedyCore

/// Milliseconds since the epoch as the wall clock said when the store opened, moved on by the
/// monotonic clock since: a wall clock stepped forward later cannot make a chunk look older than
/// it is, which garbage collection relies on (docs/gc.md).
struct StoreClock: Sendable {
    private let wallAtOpen = currentTimeMillis()
    private let openedAt = ContinuousClock.now

    /// The store's now.
    func nowMs() -> Int64 { wallAtOpen + Int64((ContinuousClock.now - openedAt) / .milliseconds(1)) }
}

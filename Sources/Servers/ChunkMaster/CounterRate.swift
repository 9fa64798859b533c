/// Rates from two reports of cumulative counters, over the reporter's own uptime between them.
struct CounterRate {
    let seconds: Double

    /// Nil on a first report, or when the process restarted (its uptime went back): its counters
    /// began again, so no rate can be taken.
    init?(uptimeMs: UInt64, previousUptimeMs: UInt64?) {
        guard let previousUptimeMs, uptimeMs > previousUptimeMs else { return nil }
        seconds = Double(uptimeMs - previousUptimeMs) / 1000
    }

    /// Per second from `old` to `new`; 0 if the counter went back.
    func of(_ new: UInt64, _ old: UInt64) -> Double { new >= old ? Double(new - old) / seconds : 0 }
}

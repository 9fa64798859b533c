/// Counts per second over a sliding window (a minute by default): announces and lookups the
/// tracker answered, and the bytes agents say they served each other. One bucket per second in
/// a ring, so recording and reading cost the same whatever the load.
struct SwarmRates: Sendable {
    /// What one second counted.
    struct Bucket: Sendable {
        var second: Int64 = -1
        var announces: UInt64 = 0
        var lookups: UInt64 = 0
        var servedBytes: UInt64 = 0
    }

    /// Seconds the rates are averaged over.
    let windowSeconds: Int64
    /// Monotonic millisecond when counting began: a tracker up for ten seconds divides by ten, not sixty.
    let startMs: Int64
    private var buckets: [Bucket]

    /// An empty window of `windowSeconds`, counting from `startMs`.
    init(windowSeconds: Int64 = 60, startMs: Int64) {
        precondition(windowSeconds > 0, "a rate window is at least a second")
        self.windowSeconds = windowSeconds
        self.startMs = startMs
        buckets = Array(repeating: Bucket(), count: Int(windowSeconds))
    }

    /// Adds to the bucket of the second `nowMs` falls in.
    mutating func record(nowMs: Int64, announces: UInt64 = 0, lookups: UInt64 = 0, servedBytes: UInt64 = 0) {
        let second = nowMs / 1000
        let slot = Int(second % windowSeconds)
        if buckets[slot].second != second { buckets[slot] = Bucket(second: second) }
        buckets[slot].announces &+= announces
        buckets[slot].lookups &+= lookups
        buckets[slot].servedBytes &+= servedBytes
    }

    /// Announces, lookups and served bytes per second over the window that ends at `nowMs`.
    func perSecond(nowMs: Int64) -> (announces: Double, lookups: Double, servedBytes: Double) {
        let second = nowMs / 1000
        let live = buckets.filter { $0.second > second - windowSeconds && $0.second <= second }
        // The seconds counted so far, the current one included, never more than the window.
        let span = Double(min(windowSeconds, max(1, (nowMs - startMs + 999) / 1000)))
        let sum = live.reduce(into: (0.0, 0.0, 0.0)) { total, bucket in
            total.0 += Double(bucket.announces)
            total.1 += Double(bucket.lookups)
            total.2 += Double(bucket.servedBytes)
        }
        return (sum.0 / span, sum.1 / span, sum.2 / span)
    }
}

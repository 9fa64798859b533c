import SpeedyCore

/// Hands out file id ranges from blocks reserved in the ``MasterStore``. A block is durable
/// before any id in it leaves the master, and the store never reserves a block twice, so ids stay
/// unique across restarts and across masters taking over from one another: a new leader starts
/// above every block any master ever reserved. What is left of a block when a master dies is
/// never used.
public actor FileIdAllocator {
    private let store: any MasterStore
    private let block: UInt64
    /// Reserved and not yet handed out.
    private var unused: Range<UInt64> = 0..<0

    /// Largest range one lease may ask for.
    public static let maxLease: UInt64 = 1_000_000

    /// Reserves `block` ids at a time from `store`.
    public init(store: any MasterStore, block: UInt64 = 100_000) {
        self.store = store
        self.block = block
    }

    /// Leases `count` consecutive ids, unique across restarts and masters. With `fence`, a new
    /// block is reserved only while `fence` holds the leader lease.
    public func lease(count: UInt64, fence: LeaderTerm? = nil) async throws -> FileIdLease {
        precondition(count > 0 && count <= Self.maxLease)
        if UInt64(unused.count) >= count {
            let start = unused.lowerBound
            unused = (start + count)..<unused.upperBound
            return FileIdLease(start: start, count: count)
        }
        // Another lease may refill `unused` while this one waits: take ours from our own block,
        // and keep whichever remainder is larger.
        let reserved = try await store.reserveFileIds(count: max(block, count), fence: fence)
        let rest = (reserved.lowerBound + count)..<reserved.upperBound
        if rest.count > unused.count { unused = rest }
        return FileIdLease(start: reserved.lowerBound, count: count)
    }
}

import SpeedyCore

/// Hands out file id ranges. The high-water mark is committed to SQLite before any id under it
/// leaves the master, so a restarted master starts above every id it ever gave out.
public actor FileIdAllocator {
    private let database: MasterDatabase
    private let block: UInt64
    private var next: UInt64
    private var highWater: UInt64

    /// Largest range one lease may ask for.
    public static let maxLease: UInt64 = 1_000_000

    /// Starts at the stored high-water mark; raises it `block` ids at a time.
    public init(database: MasterDatabase, block: UInt64 = 100_000) throws {
        self.database = database
        self.block = block
        let stored = try database.fileIdHighWater()
        self.next = stored
        self.highWater = stored
    }

    /// Leases `count` consecutive ids, unique across restarts.
    public func lease(count: UInt64) async throws -> FileIdLease {
        precondition(count > 0 && count <= Self.maxLease)
        // Claim the range before any await, so a concurrent lease cannot get the same ids.
        let start = next
        next = start + count
        if next > highWater {
            // Each lease waits for a commit covering its own range; the database keeps the maximum.
            let raised = next + block
            try await database.setFileIdHighWater(raised)
            highWater = max(highWater, raised)
        }
        return FileIdLease(start: start, count: count)
    }
}

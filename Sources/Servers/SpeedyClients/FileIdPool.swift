import SpeedyCore

/// File ids leased from the master in ranges, handed out one at a time; concurrent callers share
/// one lease request when the range runs out. What every writer of new chunks takes its keys
/// from: imageservers, and drains and rebalances (``ChunkMover``).
public actor FileIdPool {
    private let master: MasterClient
    private let leaseSize: UInt64
    private var ids: Range<UInt64> = 0..<0
    private var refill: Task<Result<FileIdLease, ServiceError>, Never>?

    /// A pool leasing `leaseSize` ids at a time from `master`.
    public init(master: MasterClient, leaseSize: UInt64) {
        self.master = master
        self.leaseSize = leaseSize
    }

    /// The next unused file id.
    public func next() async throws(ServiceError) -> UInt64 {
        while true {
            if let id = ids.popFirst() { return id }
            // Join the lease request under way, or start one.
            let task: Task<Result<FileIdLease, ServiceError>, Never>
            if let pending = refill {
                task = pending
            } else {
                let master = self.master
                let count = leaseSize
                task = Task {
                    do throws(ServiceError) { return .success(try await master.leaseFileIds(count: count)) } catch { return .failure(error) }
                }
                refill = task
            }
            let result = await task.value
            // Whoever resumes first installs the new range; the others find it (or its remains).
            if refill == task {
                refill = nil
                ids = try result.get().range
            }
        }
    }
}

/// How a ``VolumeChunkStore`` lays out and guards its disk.
public struct VolumeStoreConfiguration: Sendable {
    /// Directory holding the volume files and the index checkpoint.
    public var directory: String
    /// Size each volume file is preallocated to.
    public var volumeSize: Int
    /// Largest chunk accepted.
    public var maxChunkBytes: Int
    /// Below this many free bytes the store turns read-only, keeping room for the index and logs.
    public var reserveBytes: UInt64
    /// Caps usable space (for a shared disk, or tests); nil means the filesystem's size.
    public var capacityBytes: UInt64?
    /// Most bytes one group commit writes before its fsync; bounds a torn tail after a crash.
    public var maxBatchBytes: Int
    /// Threads doing reads (writes have one thread of their own, which keeps them in order).
    public var readThreads: Int

    /// Creates a configuration; the defaults suit a chunkserver on one disk.
    public init(
        directory: String,
        volumeSize: Int = 1 << 30,
        maxChunkBytes: Int = 16 << 20,
        reserveBytes: UInt64 = 256 << 20,
        capacityBytes: UInt64? = nil,
        maxBatchBytes: Int = 64 << 20,
        readThreads: Int = 4
    ) {
        self.directory = directory
        self.volumeSize = volumeSize
        self.maxChunkBytes = maxChunkBytes
        self.reserveBytes = reserveBytes
        self.capacityBytes = capacityBytes
        self.maxBatchBytes = maxBatchBytes
        self.readThreads = readThreads
    }
}

/// What opening a store found on disk.
public struct RecoveryReport: Sendable, Equatable {
    /// Volume files found.
    public var volumes: Int
    /// Whether a checkpoint was loaded (otherwise every volume was scanned from the start).
    public var usedCheckpoint: Bool
    /// Records read from the volumes (those after the checkpoint).
    public var recordsScanned: Int
    /// Torn tails dropped: writes in flight at a crash, never acknowledged.
    public var tornTails: Int
    /// Records kept although they fail their CRC, and damaged regions skipped.
    public var corruptRecords: Int
    /// Live chunks after recovery.
    public var chunks: Int
}

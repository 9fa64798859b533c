/// One volume as compaction sees it.
public struct VolumeStat: Sendable, Equatable, Codable {
    /// The volume id.
    public var id: UInt32
    /// Bytes the file takes (it is preallocated).
    public var size: Int
    /// Where its records end.
    public var end: Int
    /// Bytes of live records (header and padding included).
    public var liveBytes: Int
    /// Whether new records go here (the active volume is never compacted).
    public var active: Bool

    /// Bytes of deleted chunks and tombstones: what compacting this volume gives back.
    public var deadBytes: Int { max(0, end - liveBytes) }
    /// Live bytes over the file's size.
    public var liveFraction: Double { size > 0 ? Double(liveBytes) / Double(size) : 1 }

    /// Creates a description.
    public init(id: UInt32, size: Int, end: Int, liveBytes: Int, active: Bool) {
        self.id = id
        self.size = size
        self.end = end
        self.liveBytes = liveBytes
        self.active = active
    }
}

/// What one compaction did.
public struct CompactionReport: Sendable, Equatable, Codable {
    /// The volume removed.
    public var volume: UInt32
    /// Live chunks copied to the active volume, and their record bytes.
    public var chunksMoved: Int
    public var bytesMoved: Int
    /// Tombstones copied because an older volume may still hold what they delete.
    public var tombstonesKept: Int
    /// Bytes of the volume file given back to the file system.
    public var bytesReclaimed: Int
    /// Wall time it took, in milliseconds.
    public var durationMs: Int64

    /// Creates a report.
    public init(volume: UInt32, chunksMoved: Int, bytesMoved: Int, tombstonesKept: Int, bytesReclaimed: Int, durationMs: Int64) {
        self.volume = volume
        self.chunksMoved = chunksMoved
        self.bytesMoved = bytesMoved
        self.tombstonesKept = tombstonesKept
        self.bytesReclaimed = bytesReclaimed
        self.durationMs = durationMs
    }
}

/// A chunkserver's volumes and compactions (`GET /v1/volumes`, `POST /v1/compact`).
public struct VolumesReport: Sendable, Codable, Equatable {
    /// Every volume, by id.
    public var volumes: [VolumeStat]
    /// Volumes compacted by this request.
    public var compacted: [CompactionReport]
    /// Volumes compacted and bytes given back since the server started.
    public var totalCompactions: UInt64
    public var totalReclaimedBytes: UInt64
    /// Why a requested compaction stopped, if it did.
    public var error: String?

    /// Creates a report.
    public init(volumes: [VolumeStat], compacted: [CompactionReport], totalCompactions: UInt64, totalReclaimedBytes: UInt64, error: String?) {
        self.volumes = volumes
        self.compacted = compacted
        self.totalCompactions = totalCompactions
        self.totalReclaimedBytes = totalReclaimedBytes
        self.error = error
    }
}



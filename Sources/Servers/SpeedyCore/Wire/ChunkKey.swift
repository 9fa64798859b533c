/// The identity of a chunk: the group that stores it and its cluster-wide unique file id.
///
/// Both parts are immutable for the life of the chunk; the master leases file ids so that no
/// two writers ever use the same one.
public struct ChunkKey: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The chunkserver group holding every replica of the chunk.
    public var group: UInt32
    /// The file id leased from the master.
    public var fileId: UInt64

    /// Creates a key.
    public init(group: UInt32, fileId: UInt64) {
        self.group = group
        self.fileId = fileId
    }

    public static func < (lhs: ChunkKey, rhs: ChunkKey) -> Bool {
        (lhs.group, lhs.fileId) < (rhs.group, rhs.fileId)
    }

    public var description: String { "\(group)/\(fileId)" }
}

/// What a chunkserver knows of one stored chunk: enough to compare replicas without reading data.
public struct ChunkInfo: Sendable, Hashable, Codable {
    /// The chunk's file id (the group is implied by the listing or request).
    public var fileId: UInt64
    /// Payload length in bytes.
    public var length: UInt32
    /// CRC-32C of the payload.
    public var crc: UInt32

    /// Creates a description of a chunk.
    public init(fileId: UInt64, length: UInt32, crc: UInt32) {
        self.fileId = fileId
        self.length = length
        self.crc = crc
    }
}

/// One page of a chunkserver's chunk listing for a group, in ascending file id order.
public struct ChunkListing: Sendable, Codable {
    /// The group listed.
    public var group: UInt32
    /// The chunks on this page.
    public var chunks: [ChunkInfo]
    /// Pass as `after` to get the next page; nil on the last page.
    public var nextAfter: UInt64?
    /// With `?ages=true`: how long ago each chunk was stored on this server, in milliseconds, in
    /// the order of `chunks` (never more than the truth; garbage collection's clock).
    public var agesMs: [Int64]?

    /// Creates a listing page.
    public init(group: UInt32, chunks: [ChunkInfo], nextAfter: UInt64?, agesMs: [Int64]? = nil) {
        self.group = group
        self.chunks = chunks
        self.nextAfter = nextAfter
        self.agesMs = agesMs
    }
}

/// The body of `POST /v1/blobs/{digest}/chunks/move`: point a blob's chunk list at a copy of one
/// of its chunks (a drain or a rebalance, docs/recovery.md), while it still names the original.
public struct ChunkMoveRequest: Codable, Sendable, Equatable {
    /// The chunk the blob names now.
    public var from: ChunkRef
    /// Its copy in another group (or under another file id): same length and CRC.
    public var to: ChunkRef

    /// Creates a request.
    public init(from: ChunkRef, to: ChunkRef) {
        self.from = from
        self.to = to
    }
}

/// The answer of `POST /v1/blobs/{digest}/chunks/move`.
public struct ChunkMoveResult: Codable, Sendable, Equatable {
    /// Whether the blob named the chunk and now names its copy; false when it did not (any
    /// longer): nothing changed.
    public var moved: Bool

    /// Creates an answer.
    public init(moved: Bool) { self.moved = moved }
}

/// What blobs keep in one group (`GET /v1/group-usage`): what a rebalance weighs groups by.
public struct GroupUsage: Codable, Sendable, Equatable {
    /// The group.
    public var group: UInt32
    /// Chunk references blobs hold in it (a chunk two blobs list counts twice).
    public var chunks: UInt64
    /// Their bytes (one copy).
    public var bytes: UInt64

    /// Creates a figure.
    public init(group: UInt32, chunks: UInt64, bytes: UInt64) {
        self.group = group
        self.chunks = chunks
        self.bytes = bytes
    }
}

/// The answer of `GET /v1/group-usage`.
public struct GroupUsageList: Codable, Sendable, Equatable {
    /// Every group some blob has chunks in, ascending.
    public var groups: [GroupUsage]

    /// Creates an answer.
    public init(groups: [GroupUsage]) { self.groups = groups }
}

/// The bodies of the metaserver's API (docs/api.md) that are not records of their own.

/// The body of `POST /v1/uploads/{id}/append`.
public struct UploadAppendRequest: Codable, Sendable {
    public var expectedOffset: UInt64
    public var chunks: [ChunkRef]
    public var newOffset: UInt64
    public var hashState: [UInt8]

    public init(expectedOffset: UInt64, chunks: [ChunkRef], newOffset: UInt64, hashState: [UInt8]) {
        self.expectedOffset = expectedOffset
        self.chunks = chunks
        self.newOffset = newOffset
        self.hashState = hashState
    }
}

/// The body of `POST /v1/blobs/repair`.
public struct BlobRepairRequest: Codable, Sendable {
    /// The blob with its new chunks.
    public var record: BlobRecord
    /// The chunks the caller found bad; the swap happens only if they are still the stored ones.
    public var stale: [ChunkRef]

    public init(record: BlobRecord, stale: [ChunkRef]) {
        self.record = record
        self.stale = stale
    }
}

/// The answer of `GET /v1/repositories/exists`.
public struct RepositoryExists: Codable, Sendable {
    public var exists: Bool
    public init(exists: Bool) { self.exists = exists }
}

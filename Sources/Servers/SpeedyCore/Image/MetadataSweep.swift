/// A manifest garbage collection deleted (or, in a dry run, would delete).
public struct SweptManifest: Sendable, Equatable, Codable {
    /// The repository it was in.
    public var repository: String
    /// Its digest.
    public var digest: Digest
    /// Bytes of its content.
    public var size: Int64

    /// Creates a description.
    public init(repository: String, digest: Digest, size: Int64) {
        self.repository = repository
        self.digest = digest
        self.size = size
    }
}

/// What one metadata sweep (``MetadataStore/sweep(graceMs:limit:dryRun:)``) deleted.
public struct MetadataSweep: Sendable, Equatable, Codable {
    /// Manifests no tag, index or live subject kept.
    public var manifests: [SweptManifest]
    /// Blobs no manifest referred to; their chunks are queued for deletion
    /// (``MetadataStore/chunkDeletions(limit:)``).
    public var blobs: [BlobRecord]
    /// Chunks a drain or rebalance moved more than the grace ago that nothing names any more;
    /// queued for deletion like the swept blobs' (absent from metaservers before 0.16).
    public var movedChunks: [ChunkRef]

    /// Creates a result.
    public init(manifests: [SweptManifest], blobs: [BlobRecord], movedChunks: [ChunkRef] = []) {
        self.manifests = manifests
        self.blobs = blobs
        self.movedChunks = movedChunks
    }

    /// Decodes a result; an older metaserver's has no moved chunks.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        manifests = try container.decode([SweptManifest].self, forKey: .manifests)
        blobs = try container.decode([BlobRecord].self, forKey: .blobs)
        movedChunks = try container.decodeIfPresent([ChunkRef].self, forKey: .movedChunks) ?? []
    }

    /// Manifests, blobs and moved chunks: a sweep that took `limit` of them may have left more.
    public var count: Int { manifests.count + blobs.count + movedChunks.count }
}

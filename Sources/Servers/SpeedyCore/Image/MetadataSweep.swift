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

    /// Creates a result.
    public init(manifests: [SweptManifest], blobs: [BlobRecord]) {
        self.manifests = manifests
        self.blobs = blobs
    }

    /// Manifests plus blobs.
    public var count: Int { manifests.count + blobs.count }
}

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

/// What uses one chunk (`GET /v1/chunks/{group}/{fileId}/users`): the blobs whose chunk lists name
/// it, with the repositories that link each, and whether an upload in progress holds it. What an
/// operator needs to know when no member holds the chunk intact.
public struct ChunkUsers: Codable, Sendable, Equatable {
    /// Blobs listed at most; one chunk shared by many blobs must not make a huge answer.
    public static let maxBlobs = 100
    /// Repositories listed per blob at most (a base layer may be linked into thousands).
    public static let maxRepositories = 100

    /// One blob that lists the chunk.
    public struct Blob: Codable, Sendable, Equatable {
        /// The blob's digest.
        public var digest: Digest
        /// Repositories linking it, in ascending byte order; empty when every one unlinked it
        /// (it stays stored until garbage collection).
        public var repositories: [String]
        /// Whether more repositories link it than ``repositories`` lists.
        public var repositoriesTruncated: Bool

        /// Creates an entry.
        public init(digest: Digest, repositories: [String], repositoriesTruncated: Bool = false) {
            self.digest = digest
            self.repositories = repositories
            self.repositoriesTruncated = repositoriesTruncated
        }
    }

    /// The blobs listing the chunk, in ascending digest text order, at most ``maxBlobs``.
    public var blobs: [Blob]
    /// Whether more blobs list the chunk than ``blobs`` holds.
    public var truncated: Bool
    /// Whether an upload session holds the chunk: appended to it, or written by a request still
    /// streaming into it (`held_chunks`).
    public var heldByUpload: Bool

    /// Creates an answer.
    public init(blobs: [Blob], truncated: Bool, heldByUpload: Bool) {
        self.blobs = blobs
        self.truncated = truncated
        self.heldByUpload = heldByUpload
    }

    /// Nothing uses the chunk.
    public static let unused = ChunkUsers(blobs: [], truncated: false, heldByUpload: false)
}

/// The answer of `POST /v1/tags/delete-if-unchanged`.
public struct TagDeleted: Codable, Sendable {
    public var deleted: Bool
    public init(deleted: Bool) { self.deleted = deleted }
}

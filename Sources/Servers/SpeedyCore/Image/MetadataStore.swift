/// Layers, manifests, tags and upload sessions: what the metaserver keeps and imageservers use.
///
/// One protocol with two implementations that pass the same conformance suite: the SQLite store
/// inside the metaserver, and ``MetaClient``, which calls a metaserver over HTTP. Every failure is
/// one case of ``MetadataError``.
public protocol MetadataStore: Sendable {
    // MARK: Blobs

    /// The blob with `digest` if it is linked into `repository` (or anywhere, when nil).
    func blob(_ digest: Digest, in repository: String?) async throws(MetadataError) -> BlobRecord?

    /// Records a fully written blob and links it into `repository`, atomically.
    ///
    /// - Returns: the record now stored: `record` itself, or the one already stored under the same
    ///   digest (its chunks win; the caller may delete the chunks it wrote).
    func commitBlob(_ record: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord

    /// Links an existing blob into `repository` (cross-repository mount), and counts as a reference.
    /// - Throws: `.blobUnknown` when no such blob is linked into `from` (or stored at all, when nil).
    func mountBlob(_ digest: Digest, into repository: String, from: String?) async throws(MetadataError) -> BlobRecord

    /// Unlinks a blob from `repository`. The chunks stay until garbage collection.
    /// - Throws: `.blobUnknown` when it is not linked there.
    func unlinkBlob(_ digest: Digest, from repository: String) async throws(MetadataError)

    /// Replaces the chunks of a blob whose old chunks went bad (`chunktool` rewrote its bytes),
    /// as a compare-and-swap on the chunk list, in one transaction:
    /// - the stored record for `record.digest` has exactly the chunks `stale`: its size and chunks
    ///   become `record`'s, and the blob is linked into `repository`;
    /// - the stored record has other chunks (someone repaired or replaced it first): nothing
    ///   changes, not even the link, and the stored record is returned so the caller can delete
    ///   the chunks it wrote;
    /// - there is no stored record: `record` is committed as ``commitBlob(_:repository:)`` would.
    ///
    /// - Returns: the record now stored (`record` unless the swap lost).
    /// - Throws: `.invalid` when `record.size` is not the sum of its chunks' lengths.
    func repairBlob(_ record: BlobRecord, replacing stale: [ChunkRef], repository: String) async throws(MetadataError) -> BlobRecord

    /// Every stored blob (linked anywhere or nowhere) whose digest text sorts after `after`, in
    /// ascending digest text order, with its chunks; at most `limit` (clamped to 1...5000).
    /// `nextAfter` is the last digest when the page is full, nil otherwise.
    func blobs(after: String?, limit: Int) async throws(MetadataError) -> BlobPage

    // MARK: Manifests and tags

    /// Stores a manifest (immutable by digest) and, when `tag` is given, points the tag at it,
    /// in one transaction (last writer wins for the tag).
    func putManifest(_ record: ManifestRecord, tag: String?) async throws(MetadataError)

    /// The manifest `reference` (a tag or a digest) names in `repository`.
    func manifest(_ reference: String, in repository: String) async throws(MetadataError) -> ManifestRecord?

    /// Deletes a manifest and every tag pointing at it.
    /// - Throws: `.manifestUnknown`.
    func deleteManifest(_ digest: Digest, in repository: String) async throws(MetadataError)

    /// Deletes a tag; the manifest stays.
    /// - Throws: `.manifestUnknown` when there is no such tag.
    func deleteTag(_ tag: String, in repository: String) async throws(MetadataError)

    /// Tags of `repository` after `last`, in lexical order, at most `limit`.
    /// - Throws: `.nameUnknown` when the repository does not exist.
    func tags(in repository: String, after last: String?, limit: Int) async throws(MetadataError) -> NamePage

    /// Repositories after `last`, in lexical order, at most `limit`.
    func repositories(after last: String?, limit: Int) async throws(MetadataError) -> NamePage

    /// Whether `repository` exists (has a blob, manifest or tag).
    func repositoryExists(_ repository: String) async throws(MetadataError) -> Bool

    /// Manifests in `repository` whose subject is `digest`, optionally of one artifact type.
    func referrers(of digest: Digest, in repository: String, artifactType: String?) async throws(MetadataError) -> [Descriptor]

    // MARK: Retention (docs/gc.md, "Retention")

    /// The tags of `repository` after `after` in byte order, at most `limit` (clamped to
    /// 1...5000), with the manifest each names and when it was last pushed and pulled. An unknown
    /// repository has none.
    func tagDetails(in repository: String, after: String?, limit: Int) async throws(MetadataError) -> TagDetailPage

    /// Records pulls of tags: each tag's last pull time becomes the later of the stored one and
    /// the pull's. Tags that are gone are passed over.
    func recordPulls(_ pulls: [TagPull]) async throws(MetadataError)

    /// Deletes tag `detail.tag` of `repository` only if it still names `detail.digest` and was
    /// last pushed at `detail.pushedMs`: a tag pushed again since retention looked stays.
    /// - Returns: whether it was deleted.
    func deleteTag(_ detail: TagDetail, in repository: String) async throws(MetadataError) -> Bool

    // MARK: Uploads

    /// Starts an upload session for `client` (an address, or `user:<name>`).
    ///
    /// The open sessions of `repository` and of `client` are counted in the same transaction as
    /// the insert, so concurrent calls cannot overshoot a cap.
    /// - Throws: `.tooManyUploads` when one more session would take `repository` above
    ///   `limits.perRepository` or `client` above `limits.perClient`; `.invalid` when a limit is
    ///   negative.
    func createUpload(repository: String, client: String, limits: UploadLimits) async throws(MetadataError) -> UploadSession

    /// The session, or nil when unknown (finished, cancelled or never begun).
    func upload(_ id: String) async throws(MetadataError) -> UploadSession?

    /// Records that `chunks` were appended, moving the session from `expectedOffset` to `newOffset`.
    /// - Throws: `.uploadUnknown`; `.uploadOffsetMismatch` when another request moved it first.
    func appendUpload(_ id: String, expectedOffset: UInt64, chunks: [ChunkRef], newOffset: UInt64, hashState: [UInt8])
        async throws(MetadataError) -> UploadSession

    /// Ends a session (completed or cancelled).
    /// - Throws: `.uploadUnknown`.
    func deleteUpload(_ id: String) async throws(MetadataError)

    /// Ends up to `limit` sessions last created or appended to before `cutoff` (milliseconds since
    /// the epoch), least recently touched first, and returns them with their chunks so the caller
    /// can delete those. Atomic: two callers never both get the same session, and a session
    /// appended to concurrently is either expired before the append (which then fails with
    /// `.uploadUnknown`) or not at all.
    func expireUploads(idleSinceMs cutoff: Int64, limit: Int) async throws(MetadataError) -> [UploadSession]

    /// Records that `chunks`, written by a request still streaming into upload `id`, belong to
    /// that session until the request appends them or the session ends, and marks the session as
    /// touched now (so it does not expire while its request runs). Garbage collection treats held
    /// chunks as referenced (docs/gc.md).
    /// - Throws: `.uploadUnknown`.
    func holdChunks(_ chunks: [ChunkRef], upload id: String) async throws(MetadataError)

    /// Ends upload `id` and records `blob` (as ``commitBlob(_:repository:)`` does) in one
    /// transaction, so there is no instant at which the chunks belong to neither.
    /// - Returns: the record now stored.
    /// - Throws: `.uploadUnknown` when the session is gone (another request finished it);
    ///   `.invalid` when `blob.size` is not the sum of its chunks.
    func completeUpload(_ id: String, blob: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord

    // MARK: Garbage collection (docs/gc.md)

    /// Deletes garbage, in one transaction that re-checks every condition, so a reference written
    /// concurrently either comes first (and keeps its target) or finds its target gone (and fails):
    /// - manifests with no tag, no index in their repository listing them, and no subject still
    ///   stored (a referrer lives as long as its subject), last stored more than `graceMs` ago;
    /// - then blobs no manifest in any repository refers to, last committed, mounted or referenced
    ///   more than `graceMs` ago. Their chunks go to the durable deletion queue in the same
    ///   transaction.
    /// Deleting an index can make its entries garbage in the same call. At most `limit` (clamped
    /// to 1...100000) things are deleted; call again while a full sweep comes back. With `dryRun`,
    /// the transaction is rolled back: the result says what would go.
    func sweep(graceMs: Int64, limit: Int, dryRun: Bool) async throws(MetadataError) -> MetadataSweep

    /// Up to `limit` chunks whose blobs were swept, oldest first: the collector deletes them from
    /// the chunkservers, then forgets them.
    func chunkDeletions(limit: Int) async throws(MetadataError) -> [ChunkRef]

    /// Removes chunks from the deletion queue once every replica is gone.
    func forgetChunkDeletions(_ chunks: [ChunkKey]) async throws(MetadataError)

    // MARK: Moving chunks (drain, rebalance: docs/recovery.md, docs/gc.md)

    /// Points blob `digest`'s chunk list at `to` wherever it names `from` (the same group, file
    /// id, length and CRC), in one transaction that also records `from` as moved: a moved chunk
    /// counts as referenced (``chunkReferences(group:after:limit:)`` lists it as `moved:<digest>`)
    /// until a ``sweep(graceMs:limit:dryRun:)`` finds it moved more than the grace ago, with no
    /// blob listing it and no request holding it, and queues it for deletion. The blob's fence
    /// does not move.
    /// - Returns: true when the blob named `from` and now names `to`, or named `to` already (the
    ///   same move repeated after a lost answer); false when there is no such blob or it names
    ///   neither (nothing changed).
    /// - Throws: `.invalid` when `to` differs from `from` in length or CRC, is `from` itself, or a
    ///   file id is above `Int64.max`.
    func moveChunk(of digest: Digest, from: ChunkRef, to: ChunkRef) async throws(MetadataError) -> Bool

    /// Per group, the chunk references blobs hold and their bytes, groups ascending; groups no
    /// blob uses are absent. Uploads in progress and moved chunks are not counted.
    func groupUsage() async throws(MetadataError) -> [GroupUsage]

    // MARK: Chunk references (fsck, garbage collection)

    /// Groups that any blob or upload in progress has chunks in, ascending.
    func referencedGroups() async throws(MetadataError) -> [UInt32]

    /// The chunks of `group` that blobs, uploads in progress and their held chunks refer to, with
    /// file ids above
    /// `after`, in ascending file id order; a page holds at most `limit` blob references plus the
    /// uploads' references in the same file id range.
    func chunkReferences(group: UInt32, after: UInt64, limit: Int) async throws(MetadataError) -> ChunkReferencePage

    /// What uses chunk `fileId` of `group`: every stored blob whose chunk list names it (linked or
    /// not), in ascending digest text order with the repositories linking each in ascending order,
    /// and whether an upload session holds it (appended, or held by a request still streaming).
    /// At most ``ChunkUsers/maxBlobs`` blobs and ``ChunkUsers/maxRepositories`` repositories per
    /// blob, with `truncated` flags saying when more exist. An unknown chunk answers no blobs.
    /// - Throws: `.invalid` when `fileId` is above `Int64.max` (no store can hold it).
    func chunkUsers(group: UInt32, fileId: UInt64) async throws(MetadataError) -> ChunkUsers
}

/// Why a metadata operation failed.
public enum MetadataError: Error, Sendable, Equatable, CustomStringConvertible {
    case blobUnknown(Digest)
    case manifestUnknown(String)
    case nameUnknown(String)
    case uploadUnknown(String)
    /// The session is at `actual`, not where the request expected.
    case uploadOffsetMismatch(id: String, actual: UInt64)
    /// The request itself is malformed.
    case invalid(String)
    /// The store could not be reached or failed.
    case unavailable(String)
    /// A cap of ``UploadLimits`` is reached; the message says which.
    case tooManyUploads(String)

    public var description: String {
        switch self {
        case .blobUnknown(let digest): "blob \(digest) unknown"
        case .manifestUnknown(let reference): "manifest \(reference) unknown"
        case .nameUnknown(let name): "repository \(name) unknown"
        case .uploadUnknown(let id): "upload \(id) unknown"
        case .uploadOffsetMismatch(let id, let actual): "upload \(id) is at offset \(actual)"
        case .invalid(let reason): "invalid request: \(reason)"
        case .unavailable(let reason): "metadata store unavailable: \(reason)"
        case .tooManyUploads(let reason): "too many uploads: \(reason)"
        }
    }

    /// Its code on the wire, which carries its status.
    public var code: InternalErrorCode {
        switch self {
        case .blobUnknown: .blobUnknown
        case .manifestUnknown: .manifestUnknown
        case .nameUnknown: .nameUnknown
        case .uploadUnknown: .uploadUnknown
        case .uploadOffsetMismatch: .uploadOffsetMismatch
        case .invalid: .badRequest
        case .unavailable: .metadataUnavailable
        case .tooManyUploads: .tooManyUploads
        }
    }
}

extension MetadataError {
    /// The wire form, with the structured part in `detail`.
    public var errorBody: ErrorBody {
        let detail: String? =
            switch self {
            case .blobUnknown(let digest): digest.description
            case .manifestUnknown(let reference): reference
            case .nameUnknown(let name): name
            case .uploadUnknown(let id): id
            case .uploadOffsetMismatch(let id, let actual): "\(id) \(actual)"
            case .tooManyUploads(let reason): reason
            case .invalid, .unavailable: nil
            }
        return ErrorBody(code: code.rawValue, message: description, detail: detail)
    }

    /// Rebuilds the error from its wire form; nil when the body is not one of these.
    public init?(body: ErrorBody) {
        let detail = body.detail ?? ""
        switch body.internalCode {
        case .blobUnknown?:
            guard let digest = Digest(parsing: detail) else { return nil }
            self = .blobUnknown(digest)
        case .manifestUnknown?: self = .manifestUnknown(detail)
        case .nameUnknown?: self = .nameUnknown(detail)
        case .uploadUnknown?: self = .uploadUnknown(detail)
        case .uploadOffsetMismatch?:
            let parts = detail.split(separator: " ")
            guard parts.count == 2, let actual = UInt64(parts[1]) else { return nil }
            self = .uploadOffsetMismatch(id: String(parts[0]), actual: actual)
        case .badRequest?: self = .invalid(body.message)
        case .tooManyUploads?: self = .tooManyUploads(detail)
        default: return nil
        }
    }
}

import Foundation
import SpeedyCore

/// One step of a metadata transaction, in the vocabulary both stores speak: a lookup that must
/// find what it asks for, or a write. The stores' logic is written once, as lists of steps
/// (``MetadataPlan``); each store only says how to run one step in its own SQL
/// (`SQLiteMetadataStore.perform`, `PostgresMetadataStore.perform`), inside its own transaction.
///
/// Why data rather than one generic function over a `MetadataTransaction` protocol: GRDB runs a
/// transaction in a synchronous closure (a SQLite connection is never held across an `await`),
/// while PostgresNIO only answers asynchronously. A generic function would have to be `async`,
/// and could then not run inside GRDB's transaction; nor can it be synchronous for PostgreSQL.
/// Steps need neither: the plan decides what is read, what must exist (and which error a missing
/// one raises), what is written and in which order; a store executes them one by one. Adding a
/// case here makes both stores' `switch`es fail to compile until each has its SQL for it.
enum MetadataStep: Sendable {
    /// Every digest `lookup` asks about must be found; the first that is not, in the order asked,
    /// fails the transaction with ``MetadataLookup/missing(_:)``'s error.
    case require(MetadataLookup)
    /// A write; with `orElse`, a write that changes no row fails the transaction with that error.
    case write(MetadataWrite, orElse: MetadataError? = nil)
}

/// What a step may ask a store to find, within a repository: the store answers with the digests
/// it found.
enum MetadataLookup: Sendable {
    /// Blobs linked into `repository` (`repository_blobs`).
    case linkedBlobs([Digest], in: String)
    /// Manifests stored in `repository` (`manifests`).
    case storedManifests([Digest], in: String)

    var digests: [Digest] {
        switch self {
        case .linkedBlobs(let digests, _), .storedManifests(let digests, _): digests
        }
    }

    /// The error a missing digest raises: a manifest may only refer to what its repository has.
    func missing(_ digest: Digest) -> MetadataError {
        switch self {
        case .linkedBlobs: .blobUnknown(digest)
        case .storedManifests: .manifestUnknown(digest.description)
        }
    }

    /// The error for the first digest asked about that is not in `found`; nil when all are.
    func failure(found: Set<String>) -> MetadataError? {
        digests.first { !found.contains($0.description) }.map(missing)
    }
}

/// The writes the metadata logic is made of: each is one primitive both stores implement, and
/// each answers how many rows it changed (only ``MetadataStep/write(_:orElse:)``'s `orElse` reads
/// that). Names are the tables' (docs/registry.md, "Metaserver").
enum MetadataWrite: Sendable {
    /// `repositories`: the row, unless there is one.
    case ensureRepository(String, now: Int64)

    /// `blobs`: a new row, referenced now.
    case insertBlob(digest: String, size: UInt64, now: Int64)
    /// `blobs`: a new size, and referenced now.
    case resizeBlob(digest: String, size: UInt64, now: Int64)
    /// `blobs.ref_ms`: the blobs' garbage collection fence moves to now (whatever just referred to
    /// them is safe); digests not stored are passed over.
    case touchBlobs([String], now: Int64)
    /// `blobs`: the row (with its chunks, links and deletion queued by other steps).
    case deleteBlob(String)
    /// `blob_chunks`: the record's chunks, in order.
    case insertChunks(BlobRecord)
    /// `blob_chunks`: all of a blob's chunks.
    case deleteChunks(digest: String)
    /// `repository_blobs`: the link, unless there is one.
    case link(digest: String, repository: String)
    /// `repository_blobs`: one link.
    case unlink(digest: String, repository: String)
    /// `repository_blobs`: every link of the blob.
    case unlinkEverywhere(digest: String)
    /// `chunk_deletions`: the chunks, queued now, each once.
    case queueChunkDeletions([ChunkRef], now: Int64)
    /// `blob_chunks`: the blob's rows naming `from` (group, file id, length and CRC) name `to`.
    case replaceChunk(digest: String, from: ChunkRef, to: ChunkRef)
    /// `moved_chunks`: `chunk` was moved away for blob `owner` now; kept (referenced) until swept.
    case recordMovedChunk(ChunkRef, owner: String, now: Int64)
    /// `moved_chunks`: the rows of these chunks.
    case forgetMovedChunks([ChunkKey])

    /// `manifests`: the row; when it is stored already, only its `ref_ms` moves (the first
    /// content, type and annotations stand).
    case storeManifest(ManifestRow)
    /// `manifests`: one row.
    case deleteManifest(repository: String, digest: String)
    /// `manifest_refs`: what a manifest refers to, each once.
    case recordReferences(repository: String, manifest: String, [ManifestReference])
    /// `manifest_refs`: everything a manifest refers to.
    case deleteReferences(repository: String, manifest: String)
    /// `tags`: the tag now names `digest`, whatever it named before.
    case setTag(repository: String, tag: String, digest: String, now: Int64)
    /// `tags`: one tag.
    case deleteTag(repository: String, tag: String)
    /// `tags`: every tag naming the manifest.
    case deleteTags(repository: String, manifest: String)

    /// `uploads`: the session's row, as the session says.
    case updateUpload(UploadSession, now: Int64)
    /// `uploads.updated_ms`: the session was used now.
    case touchUpload(id: String, now: Int64)
    /// `uploads`: the session's row.
    case deleteUpload(id: String)
    /// `held_chunks`: chunks a request streaming into the session holds, each once.
    case holdChunks([ChunkRef], upload: String)
    /// `held_chunks`: the holds on these chunks (nil: on all the session's).
    case releaseHeldChunks([ChunkRef]?, upload: String)
}

/// What a manifest refers to, one row of `manifest_refs`.
struct ManifestReference: Hashable, Sendable {
    /// `manifest_refs.kind`: what the target is. The values are stored: never renumber them.
    enum Kind: Int, Sendable {
        /// A blob: the config or a layer.
        case blob = 0
        /// A manifest: an index's entry.
        case manifest = 1
    }

    var kind: Kind
    var target: String

    /// The rows for `references`, each once, blobs first, in the order given.
    static func rows(_ references: ManifestReferences) -> [ManifestReference] {
        var seen = Set<ManifestReference>()
        let all = references.blobs.map { ManifestReference(kind: .blob, target: $0.description) }
            + references.manifests.map { ManifestReference(kind: .manifest, target: $0.description) }
        return all.filter { seen.insert($0).inserted }
    }
}

/// A row of `manifests` as both stores keep it.
struct ManifestRow: Sendable {
    var repository: String
    var digest: String
    var mediaType: String
    var content: [UInt8]
    var subject: String?
    var artifactType: String?
    /// The annotations as JSON text.
    var annotations: String?
    /// `created_ms` of a new row, and `ref_ms` either way.
    var now: Int64

    init(_ record: ManifestRecord, now: Int64) {
        repository = record.repository
        digest = record.digest.description
        mediaType = record.mediaType
        content = record.content
        subject = record.subject?.description
        artifactType = record.artifactType
        annotations = record.annotations.flatMap { try? String(decoding: WireJSON.encoder().encode($0), as: UTF8.self) }
        self.now = now
    }

    /// The `annotations` column read back; nil when absent or unreadable.
    static func annotations(_ column: String?) -> [String: String]? {
        column.flatMap { try? WireJSON.decoder().decode([String: String].self, from: Data($0.utf8)) }
    }
}

/// How an upload session's chunk list is kept in `uploads.chunks`: JSON text.
enum UploadChunksColumn {
    static func encode(_ chunks: [ChunkRef]) throws -> String {
        String(decoding: try WireJSON.encoder().encode(chunks), as: UTF8.self)
    }

    static func decode(_ column: String) throws -> [ChunkRef] {
        try WireJSON.decoder().decode([ChunkRef].self, from: Data(column.utf8))
    }
}

import Logging
import NIOCore
import PostgresNIO
import SpeedyCore
import SpeedyPostgres

/// How PostgreSQL runs the ``MetadataStep``s the metadata logic is written in (``MetadataPlan``):
/// one statement for each, lists sent as arrays through `unnest`, in the caller's transaction.
extension PostgresMetadataStore {
    /// Runs, in one transaction, the steps `plan` makes of the stored blob `digest` (with
    /// `repository`, only when linked there; nil when there is none); answers the blob it keeps.
    func writeBlob(
        _ digest: Digest, linkedIn repository: String? = nil, operation: String = #function,
        _ plan: @escaping @Sendable (_ existing: BlobRecord?, _ now: Int64) throws(MetadataError) -> MetadataPlan.BlobOutcome
    ) async throws(MetadataError) -> BlobRecord {
        try await run(operation) {
            try await database.transaction { c in
                let (blob, steps) = try plan(try await Self.loadBlob(c, digest.description, linkedIn: repository, logger: logger), Self.now)
                try await Self.perform(c, steps, logger: logger)
                return blob
            }
        }
    }

    /// Runs `steps` (``MetadataPlan``, the logic both stores share) in order on `c`, in the
    /// caller's transaction; throws the error of the first that fails.
    static func perform(_ c: PostgresConnection, _ steps: [MetadataStep], logger: Logger) async throws {
        for step in steps {
            switch step {
            case .require(let lookup):
                if let error = lookup.failure(found: try await found(c, lookup, logger: logger)) { throw error }
            case .write(let write, let orElse):
                if try await apply(c, write, logger: logger) == 0, let orElse { throw orElse }
            }
        }
    }

    /// Of the digests `lookup` asks about, those that are there, in one statement.
    static func found(_ c: PostgresConnection, _ lookup: MetadataLookup, logger: Logger) async throws -> Set<String> {
        let digests = lookup.digests.map(\.description)
        guard !digests.isEmpty else { return [] }
        let query: PostgresQuery =
            switch lookup {
            case .linkedBlobs(_, let repository):
                "SELECT digest FROM repository_blobs WHERE repository = \(repository) AND digest = ANY(\(digests))"
            case .storedManifests(_, let repository):
                "SELECT digest FROM manifests WHERE repository = \(repository) AND digest = ANY(\(digests))"
            }
        return Set(try await PostgresBackend.column(c, query, as: String.self, logger: logger))
    }

    /// Makes one write, in one statement (lists through `unnest`); returns how many rows it changed.
    static func apply(_ c: PostgresConnection, _ write: MetadataWrite, logger: Logger) async throws -> Int {
        let query: PostgresQuery
        switch write {
        case .ensureRepository(let name, let now):
            query = "INSERT INTO repositories (name, created_ms) VALUES (\(name), \(now)) ON CONFLICT DO NOTHING RETURNING 1"
        case .insertBlob(let digest, let size, let now):
            query = "INSERT INTO blobs (digest, size, created_ms, ref_ms) VALUES (\(digest), \(Int64(size)), \(now), \(now)) RETURNING 1"
        case .resizeBlob(let digest, let size, let now):
            query = "UPDATE blobs SET size = \(Int64(size)), ref_ms = \(now) WHERE digest = \(digest) RETURNING 1"
        case .touchBlobs(let digests, let now):
            guard !digests.isEmpty else { return 0 }
            query = "UPDATE blobs SET ref_ms = \(now) WHERE digest = ANY(\(digests)) RETURNING 1"
        case .deleteBlob(let digest):
            query = "DELETE FROM blobs WHERE digest = \(digest) RETURNING 1"
        case .insertChunks(let record):
            guard !record.chunks.isEmpty else { return 0 }
            let columns = ChunkColumns(record.chunks)
            let seqs = record.chunks.indices.map { Int64($0) }
            query = """
                INSERT INTO blob_chunks (digest, seq, group_id, file_id, length, crc)
                SELECT \(record.digest.description), s, g, f, l, k FROM unnest(\(seqs)::bigint[], \(columns.groups)::bigint[],
                    \(columns.files)::bigint[], \(columns.lengths)::bigint[], \(columns.crcs)::bigint[]) AS t(s, g, f, l, k)
                RETURNING 1
                """
        case .deleteChunks(let digest):
            query = "DELETE FROM blob_chunks WHERE digest = \(digest) RETURNING 1"
        case .link(let digest, let repository):
            query = "INSERT INTO repository_blobs (repository, digest) VALUES (\(repository), \(digest)) ON CONFLICT DO NOTHING RETURNING 1"
        case .unlink(let digest, let repository):
            query = "DELETE FROM repository_blobs WHERE repository = \(repository) AND digest = \(digest) RETURNING 1"
        case .unlinkEverywhere(let digest):
            query = "DELETE FROM repository_blobs WHERE digest = \(digest) RETURNING 1"
        case .queueChunkDeletions(let chunks, let now):
            guard !chunks.isEmpty else { return 0 }
            let columns = ChunkColumns(chunks)
            query = """
                INSERT INTO chunk_deletions (group_id, file_id, length, crc, queued_ms)
                SELECT g, f, l, k, \(now) FROM unnest(\(columns.groups)::bigint[], \(columns.files)::bigint[],
                    \(columns.lengths)::bigint[], \(columns.crcs)::bigint[]) AS t(g, f, l, k)
                ON CONFLICT DO NOTHING RETURNING 1
                """
        case .replaceChunk(let digest, let from, let to):
            query = """
                UPDATE blob_chunks SET group_id = \(Int64(to.group)), file_id = \(Int64(bitPattern: to.fileId))
                WHERE digest = \(digest) AND group_id = \(Int64(from.group)) AND file_id = \(Int64(bitPattern: from.fileId))
                    AND length = \(Int64(from.length)) AND crc = \(Int64(from.crc))
                RETURNING 1
                """
        case .recordMovedChunk(let chunk, let owner, let now):
            query = """
                INSERT INTO moved_chunks (group_id, file_id, length, crc, owner, moved_ms)
                VALUES (\(Int64(chunk.group)), \(Int64(bitPattern: chunk.fileId)), \(Int64(chunk.length)), \(Int64(chunk.crc)), \(owner), \(now))
                ON CONFLICT DO NOTHING RETURNING 1
                """
        case .forgetMovedChunks(let keys):
            guard !keys.isEmpty else { return 0 }
            query = """
                DELETE FROM moved_chunks WHERE (group_id, file_id) IN
                    (SELECT * FROM unnest(\(keys.map { Int64($0.group) })::bigint[], \(keys.map { Int64(bitPattern: $0.fileId) })::bigint[]))
                RETURNING 1
                """
        case .storeManifest(let row):
            query = """
                INSERT INTO manifests (repository, digest, media_type, content, subject, artifact_type, annotations, created_ms, ref_ms)
                VALUES (\(row.repository), \(row.digest), \(row.mediaType), \(ByteBuffer(bytes: row.content)),
                    \(row.subject), \(row.artifactType), \(row.annotations), \(row.now), \(row.now))
                ON CONFLICT (repository, digest) DO UPDATE SET ref_ms = excluded.ref_ms
                RETURNING 1
                """
        case .deleteManifest(let repository, let digest):
            query = "DELETE FROM manifests WHERE repository = \(repository) AND digest = \(digest) RETURNING 1"
        case .recordReferences(let repository, let manifest, let references):
            guard !references.isEmpty else { return 0 }
            query = """
                INSERT INTO manifest_refs (repository, manifest, kind, target)
                SELECT \(repository), \(manifest), k, t
                FROM unnest(\(references.map { Int64($0.kind.rawValue) })::bigint[], \(references.map(\.target))::text[]) AS u(k, t)
                ON CONFLICT DO NOTHING RETURNING 1
                """
        case .deleteReferences(let repository, let manifest):
            query = "DELETE FROM manifest_refs WHERE repository = \(repository) AND manifest = \(manifest) RETURNING 1"
        case .setTag(let repository, let tag, let digest, let now):
            query = """
                INSERT INTO tags (repository, tag, digest, updated_ms) VALUES (\(repository), \(tag), \(digest), \(now))
                ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms
                RETURNING 1
                """
        case .deleteTag(let repository, let tag):
            query = "DELETE FROM tags WHERE repository = \(repository) AND tag = \(tag) RETURNING 1"
        case .deleteTags(let repository, let manifest):
            query = "DELETE FROM tags WHERE repository = \(repository) AND digest = \(manifest) RETURNING 1"
        case .updateUpload(let session, let now):
            let chunks = try UploadChunksColumn.encode(session.chunks)
            query = """
                UPDATE uploads SET "offset" = \(Int64(bitPattern: session.offset)), chunks = \(chunks),
                    hash_state = \(ByteBuffer(bytes: session.hashState)), updated_ms = \(now) WHERE id = \(session.id)
                RETURNING 1
                """
        case .touchUpload(let id, let now):
            query = "UPDATE uploads SET updated_ms = \(now) WHERE id = \(id) RETURNING 1"
        case .deleteUpload(let id):
            query = "DELETE FROM uploads WHERE id = \(id) RETURNING 1"
        case .holdChunks(let chunks, let id):
            guard !chunks.isEmpty else { return 0 }
            let columns = ChunkColumns(chunks)
            query = """
                INSERT INTO held_chunks (upload_id, group_id, file_id, length, crc)
                SELECT \(id), g, f, l, k FROM unnest(\(columns.groups)::bigint[], \(columns.files)::bigint[],
                    \(columns.lengths)::bigint[], \(columns.crcs)::bigint[]) AS t(g, f, l, k)
                ON CONFLICT DO NOTHING RETURNING 1
                """
        case .releaseHeldChunks(nil, let id):
            query = "DELETE FROM held_chunks WHERE upload_id = \(id) RETURNING 1"
        case .releaseHeldChunks(let chunks?, let id):
            guard !chunks.isEmpty else { return 0 }
            let columns = ChunkColumns(chunks)
            query = """
                DELETE FROM held_chunks WHERE upload_id = \(id) AND (group_id, file_id) IN
                    (SELECT * FROM unnest(\(columns.groups)::bigint[], \(columns.files)::bigint[]))
                RETURNING 1
                """
        }
        return try await PostgresBackend.count(c, query, logger: logger)
    }

    /// Chunks as the columns `unnest` takes, file ids as PostgreSQL's signed 64 bits.
    struct ChunkColumns {
        var groups: [Int64], files: [Int64], lengths: [Int64], crcs: [Int64]

        init(_ chunks: [ChunkRef]) {
            groups = chunks.map { Int64($0.group) }
            files = chunks.map { Int64(bitPattern: $0.fileId) }
            lengths = chunks.map { Int64($0.length) }
            crcs = chunks.map { Int64($0.crc) }
        }
    }
}

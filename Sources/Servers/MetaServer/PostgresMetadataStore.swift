import Foundation
import CoreMetrics
import Logging
import NIOCore
import PostgresNIO
import SpeedyPostgres
import ServerSupport
import SpeedyCore

/// The metaserver's ``SpeedyCore/MetadataStore`` on PostgreSQL (`speedy metaserver --database
/// postgresql://…`), for several metaservers sharing one database. Same tables and contract as
/// ``SQLiteMetadataStore`` (docs/registry.md, "Metaserver"); every write is one serializable transaction,
/// retried on a conflict with another metaserver's (``ServerSupport/PostgresBackend``).
public final class PostgresMetadataStore: MetadataStore, UploadSessionCounting {
    let database: PostgresBackend
    let logger: Logger

    /// Connects to `url` and migrates the schema forward.
    /// - Throws: when the database cannot be reached or its schema is newer than this build's.
    public init(url: PostgresURL, logger: Logger) async throws {
        self.logger = logger
        database = try await PostgresBackend.open(url, component: "metaserver", steps: Self.schema, logger: logger)
    }

    /// Closes the connections.
    public func close() async { await database.close() }

    /// Schema versions: version N is reached by running `schema[N - 1]`. Version 1 is SQLite's v3
    /// (docs/registry.md, "Metaserver"). Text keys sort by bytes (`COLLATE "C"`), as SQLite's do, so pages
    /// (`after`, `last`) come in the same order on both stores.
    static let schema = [
        """
        CREATE TABLE repositories (name TEXT COLLATE "C" PRIMARY KEY, created_ms BIGINT NOT NULL);
        CREATE TABLE blobs (
            digest TEXT COLLATE "C" PRIMARY KEY, size BIGINT NOT NULL, created_ms BIGINT NOT NULL, ref_ms BIGINT NOT NULL);
        CREATE INDEX blobs_by_ref ON blobs(ref_ms);
        CREATE TABLE blob_chunks (
            digest TEXT COLLATE "C" NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE, seq BIGINT NOT NULL,
            group_id BIGINT NOT NULL, file_id BIGINT NOT NULL, length BIGINT NOT NULL, crc BIGINT NOT NULL,
            PRIMARY KEY (digest, seq));
        CREATE INDEX blob_chunks_by_chunk ON blob_chunks(group_id, file_id);
        CREATE TABLE repository_blobs (
            repository TEXT COLLATE "C" NOT NULL REFERENCES repositories(name),
            digest TEXT COLLATE "C" NOT NULL REFERENCES blobs(digest), PRIMARY KEY (repository, digest));
        CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest);
        CREATE TABLE manifests (
            repository TEXT COLLATE "C" NOT NULL REFERENCES repositories(name), digest TEXT COLLATE "C" NOT NULL,
            media_type TEXT NOT NULL, content BYTEA NOT NULL, subject TEXT COLLATE "C", artifact_type TEXT, annotations TEXT,
            created_ms BIGINT NOT NULL, ref_ms BIGINT NOT NULL, PRIMARY KEY (repository, digest));
        CREATE INDEX manifests_by_subject ON manifests(repository, subject);
        CREATE INDEX manifests_by_ref ON manifests(ref_ms);
        CREATE TABLE tags (
            repository TEXT COLLATE "C" NOT NULL, tag TEXT COLLATE "C" NOT NULL, digest TEXT COLLATE "C" NOT NULL,
            updated_ms BIGINT NOT NULL, PRIMARY KEY (repository, tag),
            FOREIGN KEY (repository, digest) REFERENCES manifests(repository, digest));
        CREATE INDEX tags_by_digest ON tags(repository, digest);
        CREATE TABLE uploads (
            id TEXT PRIMARY KEY, repository TEXT COLLATE "C" NOT NULL, client TEXT NOT NULL, "offset" BIGINT NOT NULL,
            chunks TEXT NOT NULL, hash_state BYTEA NOT NULL, created_ms BIGINT NOT NULL, updated_ms BIGINT NOT NULL);
        CREATE INDEX uploads_by_repository ON uploads(repository);
        CREATE INDEX uploads_by_client ON uploads(client);
        CREATE INDEX uploads_by_updated ON uploads(updated_ms);
        CREATE TABLE manifest_refs (
            repository TEXT COLLATE "C" NOT NULL, manifest TEXT COLLATE "C" NOT NULL, kind INTEGER NOT NULL,
            target TEXT COLLATE "C" NOT NULL, PRIMARY KEY (repository, manifest, kind, target));
        CREATE INDEX manifest_refs_by_target ON manifest_refs(target, kind, repository);
        CREATE TABLE held_chunks (
            upload_id TEXT NOT NULL, group_id BIGINT NOT NULL, file_id BIGINT NOT NULL, length BIGINT NOT NULL,
            crc BIGINT NOT NULL, PRIMARY KEY (upload_id, group_id, file_id));
        CREATE INDEX held_chunks_by_chunk ON held_chunks(group_id, file_id);
        CREATE TABLE chunk_deletions (
            group_id BIGINT NOT NULL, file_id BIGINT NOT NULL, length BIGINT NOT NULL, crc BIGINT NOT NULL,
            queued_ms BIGINT NOT NULL, PRIMARY KEY (group_id, file_id));
        """,
        // 2: SQLite's v5, chunks a drain or rebalance moved away (docs/gc.md, "Moving chunks").
        """
        CREATE TABLE moved_chunks (
            group_id BIGINT NOT NULL, file_id BIGINT NOT NULL, length BIGINT NOT NULL, crc BIGINT NOT NULL,
            owner TEXT COLLATE "C" NOT NULL, moved_ms BIGINT NOT NULL, PRIMARY KEY (group_id, file_id));
        CREATE INDEX moved_chunks_by_time ON moved_chunks(moved_ms);
        """,
        // 3: SQLite's v6, when each tag was last pulled (docs/gc.md, "Retention").
        """
        ALTER TABLE tags ADD COLUMN pulled_ms BIGINT NOT NULL DEFAULT 0;
        """,
    ]

    // MARK: Running calls

    /// Runs a database call, timing it in `speedy_metaserver_database_seconds` and turning its
    /// errors into ``MetadataError`` with PostgreSQL's reason: `.invalid` when PostgreSQL refused
    /// the data itself (a NUL in a name, say), so a client's bad input is not taken for a
    /// metaserver down; `.unavailable` otherwise.
    func run<T>(_ operation: String = #function, _ body: () async throws -> T) async throws(MetadataError) -> T {
        try await DatabaseMetrics.measure(operation, classify: { error in
            PostgresBackend.isDataException(error) ? .invalid(PostgresBackend.describe(error)) : .unavailable(PostgresBackend.describe(error))
        }, body)
    }

    static func chunk(_ columns: (Int64, Int64, Int64, Int64)) -> ChunkRef {
        ChunkRef(group: UInt32(truncatingIfNeeded: columns.0), fileId: UInt64(bitPattern: columns.1), length: UInt32(truncatingIfNeeded: columns.2), crc: UInt32(truncatingIfNeeded: columns.3))
    }

    static func bytes(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

    static var now: Int64 { currentTimeMillis() }

    // MARK: Blobs

    /// The stored blob `digest` with its chunks in order, in one round trip; with `repository`,
    /// only when linked there.
    static func loadBlob(_ c: PostgresConnection, _ digest: String, linkedIn repository: String? = nil, logger: Logger) async throws -> BlobRecord? {
        guard let parsed = Digest(parsing: digest) else { return nil }
        let query: PostgresQuery =
            if let repository {
                """
                SELECT b.size, c.group_id, c.file_id, c.length, c.crc FROM blobs b
                LEFT JOIN blob_chunks c ON c.digest = b.digest
                WHERE b.digest = \(digest) AND EXISTS (SELECT 1 FROM repository_blobs r WHERE r.repository = \(repository) AND r.digest = b.digest)
                ORDER BY c.seq
                """
            } else {
                """
                SELECT b.size, c.group_id, c.file_id, c.length, c.crc FROM blobs b
                LEFT JOIN blob_chunks c ON c.digest = b.digest WHERE b.digest = \(digest) ORDER BY c.seq
                """
            }
        let rows = try await PostgresBackend.rows(c, query, as: (Int64, Int64?, Int64?, Int64?, Int64?).self, logger: logger)
        guard let first = rows.first else { return nil }
        let chunks = rows.compactMap { row -> ChunkRef? in
            guard let group = row.1, let file = row.2, let length = row.3, let crc = row.4 else { return nil }
            return chunk((group, file, length, crc))
        }
        return BlobRecord(digest: parsed, size: UInt64(bitPattern: first.0), chunks: chunks)
    }

    public func blob(_ digest: Digest, in repository: String?) async throws(MetadataError) -> BlobRecord? {
        try await run { try await database.statement { c in try await Self.loadBlob(c, digest.description, linkedIn: repository, logger: logger) } }
    }

    public func commitBlob(_ record: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(record)
        return try await writeBlob(record.digest) { existing, now in
            MetadataPlan.commitBlob(record, existing: existing, repository: repository, now: now)
        }
    }

    public func repairBlob(_ record: BlobRecord, replacing stale: [ChunkRef], repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(record)
        return try await writeBlob(record.digest) { existing, now in
            MetadataPlan.repairBlob(record, replacing: stale, existing: existing, repository: repository, now: now)
        }
    }

    public func blobs(after: String?, limit: Int) async throws(MetadataError) -> BlobPage {
        let limit = min(max(limit, 1), 5000)
        return try await run {
            try await database.read { c in
                let sizes = try await PostgresBackend.rows(
                    c, "SELECT digest, size FROM blobs WHERE digest > \(after ?? "") ORDER BY digest LIMIT \(limit)", as: (String, Int64).self,
                    logger: logger)
                guard let last = sizes.last?.0 else { return BlobPage(blobs: [], nextAfter: nil) }
                // One range scan for the whole page's chunks rather than a query per blob.
                var chunks: [String: [ChunkRef]] = [:]
                for row in try await PostgresBackend.rows(
                    c,
                    """
                    SELECT digest, group_id, file_id, length, crc FROM blob_chunks
                    WHERE digest > \(after ?? "") AND digest <= \(last) ORDER BY digest, seq
                    """, as: (String, Int64, Int64, Int64, Int64).self, logger: logger)
                {
                    chunks[row.0, default: []].append(Self.chunk((row.1, row.2, row.3, row.4)))
                }
                let blobs = sizes.compactMap { row in
                    Digest(parsing: row.0).map { BlobRecord(digest: $0, size: UInt64(bitPattern: row.1), chunks: chunks[row.0] ?? []) }
                }
                return BlobPage(blobs: blobs, nextAfter: sizes.count == limit ? last : nil)
            }
        }
    }

    public func mountBlob(_ digest: Digest, into repository: String, from: String?) async throws(MetadataError) -> BlobRecord {
        // From anywhere: the blob need only be stored (as on SQLite).
        try await writeBlob(digest, linkedIn: from) { found, now throws(MetadataError) in
            try MetadataPlan.mountBlob(digest, found: found, into: repository, now: now)
        }
    }

    public func unlinkBlob(_ digest: Digest, from repository: String) async throws(MetadataError) {
        try await run {
            try await database.statement { c in try await Self.perform(c, MetadataPlan.unlinkBlob(digest, from: repository), logger: logger) }
        }
    }

    // MARK: Manifests and tags

    /// The transaction's steps are ``MetadataPlan/putManifest(_:tag:now:)``'s, shared with SQLite.
    public func putManifest(_ record: ManifestRecord, tag: String?) async throws(MetadataError) {
        try await run {
            try await database.transaction { c in
                try await Self.perform(c, MetadataPlan.putManifest(record, tag: tag, now: Self.now), logger: logger)
            }
        }
    }

    public func manifest(_ reference: String, in repository: String) async throws(MetadataError) -> ManifestRecord? {
        try await run {
            let query: PostgresQuery =
                if Digest.looksLikeDigest(reference) {
                    """
                    SELECT digest, media_type, content, subject, artifact_type, annotations FROM manifests
                    WHERE repository = \(repository) AND digest = \(reference)
                    """
                } else {
                    """
                    SELECT m.digest, m.media_type, m.content, m.subject, m.artifact_type, m.annotations FROM tags t
                    JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
                    WHERE t.repository = \(repository) AND t.tag = \(reference)
                    """
                }
            let rows = try await database.statement { c in
                try await PostgresBackend.rows(c, query, as: (String, String, ByteBuffer, String?, String?, String?).self, logger: logger)
            }
            guard let row = rows.first, let digest = Digest(parsing: row.0) else { return nil }
            let annotations = ManifestRow.annotations(row.5)
            return ManifestRecord(
                repository: repository, digest: digest, mediaType: row.1, content: Self.bytes(row.2),
                subject: row.3.flatMap { Digest(parsing: $0) }, artifactType: row.4, annotations: annotations)
        }
    }

    public func deleteManifest(_ digest: Digest, in repository: String) async throws(MetadataError) {
        try await run {
            try await database.transaction { c in try await Self.perform(c, MetadataPlan.deleteManifest(digest, in: repository), logger: logger) }
        }
    }

    public func deleteTag(_ tag: String, in repository: String) async throws(MetadataError) {
        try await run {
            try await database.statement { c in try await Self.perform(c, MetadataPlan.deleteTag(tag, in: repository), logger: logger) }
        }
    }

    public func tags(in repository: String, after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        let limit = MetadataChecks.pageLimit(limit)
        return try await run {
            try await database.statement { c in
                // Lexical order ignoring case (as the spec asks), ties broken by the exact bytes.
                let rows = try await PostgresBackend.column(
                    c,
                    """
                    SELECT tag FROM tags WHERE repository = \(repository) AND (lower(tag), tag) > (lower(\(last ?? "")), \(last ?? ""))
                    ORDER BY lower(tag), tag LIMIT \(limit + 1)
                    """, as: String.self, logger: logger)
                // A tag implies its repository; only an empty page needs to ask.
                if rows.isEmpty, try await !Self.exists(c, repository, logger: logger) { throw MetadataError.nameUnknown(repository) }
                return NamePage(names: Array(rows.prefix(limit)), more: rows.count > limit)
            }
        }
    }

    public func repositories(after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        let limit = MetadataChecks.pageLimit(limit)
        return try await run {
            let rows = try await database.statement { c in
                try await PostgresBackend.column(c, "SELECT name FROM repositories WHERE name > \(last ?? "") ORDER BY name LIMIT \(limit + 1)", as: String.self, logger: logger)
            }
            return NamePage(names: Array(rows.prefix(limit)), more: rows.count > limit)
        }
    }

    private static func exists(_ c: PostgresConnection, _ repository: String, logger: Logger) async throws -> Bool {
        try await PostgresBackend.count(c, "SELECT 1 FROM repositories WHERE name = \(repository)", logger: logger) > 0
    }

    public func repositoryExists(_ repository: String) async throws(MetadataError) -> Bool {
        try await run { try await database.statement { c in try await Self.exists(c, repository, logger: logger) } }
    }

    public func referrers(of digest: Digest, in repository: String, artifactType: String?) async throws(MetadataError) -> [Descriptor] {
        try await run {
            // A nil type matches every manifest (NULL IS NULL), a type only its own.
            let query: PostgresQuery = """
                SELECT digest, media_type, octet_length(content)::bigint, artifact_type, annotations FROM manifests
                WHERE repository = \(repository) AND subject = \(digest.description)
                    AND (\(artifactType)::text IS NULL OR artifact_type = \(artifactType))
                ORDER BY digest
                """
            let rows = try await database.statement { c in
                try await PostgresBackend.rows(c, query, as: (String, String, Int64, String?, String?).self, logger: logger)
            }
            return rows.compactMap { row in
                guard let d = Digest(parsing: row.0) else { return nil }
                let annotations = ManifestRow.annotations(row.4)
                return Descriptor(mediaType: row.1, digest: d, size: row.2, artifactType: row.3, annotations: annotations)
            }
        }
    }
}

import Foundation
import CoreMetrics
import GRDB
import ServerSupport
import SpeedyCore

/// The metaserver's ``SpeedyCore/MetadataStore``: SQLite through GRDB, in WAL mode so reads run
/// beside the single writer. Schema in docs/registry.md, "Metaserver".
public final class SQLiteMetadataStore: MetadataStore, UploadSessionCounting {
    let pool: DatabasePool

    /// Opens or creates the database at `path` and migrates it.
    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE repositories (name TEXT PRIMARY KEY, created_ms INTEGER NOT NULL);
                    CREATE TABLE blobs (digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created_ms INTEGER NOT NULL);
                    CREATE TABLE blob_chunks (
                        digest TEXT NOT NULL REFERENCES blobs(digest) ON DELETE CASCADE, seq INTEGER NOT NULL,
                        group_id INTEGER NOT NULL, file_id INTEGER NOT NULL, length INTEGER NOT NULL, crc INTEGER NOT NULL,
                        PRIMARY KEY (digest, seq));
                    CREATE INDEX blob_chunks_by_chunk ON blob_chunks(group_id, file_id);
                    CREATE TABLE repository_blobs (
                        repository TEXT NOT NULL REFERENCES repositories(name), digest TEXT NOT NULL REFERENCES blobs(digest),
                        PRIMARY KEY (repository, digest));
                    CREATE TABLE manifests (
                        repository TEXT NOT NULL REFERENCES repositories(name), digest TEXT NOT NULL, media_type TEXT NOT NULL,
                        content BLOB NOT NULL, subject TEXT, artifact_type TEXT, annotations TEXT, created_ms INTEGER NOT NULL,
                        PRIMARY KEY (repository, digest));
                    CREATE INDEX manifests_by_subject ON manifests(repository, subject);
                    CREATE TABLE tags (
                        repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, updated_ms INTEGER NOT NULL,
                        PRIMARY KEY (repository, tag), FOREIGN KEY (repository, digest) REFERENCES manifests(repository, digest));
                    CREATE TABLE uploads (
                        id TEXT PRIMARY KEY, repository TEXT NOT NULL, offset INTEGER NOT NULL, chunks TEXT NOT NULL,
                        hash_state BLOB NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL);
                    """)
        }
        // Upload caps count sessions by repository and by client, and expiry scans by age:
        // indexes keep those cheap however many sessions are open. Sessions from before v2 have
        // no known client ('').
        migrator.registerMigration("v2") { db in
            try db.execute(
                sql: """
                    ALTER TABLE uploads ADD COLUMN client TEXT NOT NULL DEFAULT '';
                    CREATE INDEX uploads_by_repository ON uploads(repository);
                    CREATE INDEX uploads_by_client ON uploads(client);
                    CREATE INDEX uploads_by_updated ON uploads(updated_ms);
                    """)
        }
        // Garbage collection (docs/gc.md): what each manifest refers to, when each blob and
        // manifest was last referenced, chunks held by requests still streaming, and the durable
        // queue of chunks whose blobs were swept.
        migrator.registerMigration("v3") { db in
            try db.execute(
                sql: """
                    ALTER TABLE blobs ADD COLUMN ref_ms INTEGER NOT NULL DEFAULT 0;
                    UPDATE blobs SET ref_ms = created_ms;
                    CREATE INDEX blobs_by_ref ON blobs(ref_ms);
                    ALTER TABLE manifests ADD COLUMN ref_ms INTEGER NOT NULL DEFAULT 0;
                    UPDATE manifests SET ref_ms = created_ms;
                    CREATE INDEX manifests_by_ref ON manifests(ref_ms);
                    CREATE INDEX tags_by_digest ON tags(repository, digest);
                    CREATE TABLE manifest_refs (
                        repository TEXT NOT NULL, manifest TEXT NOT NULL, kind INTEGER NOT NULL, target TEXT NOT NULL,
                        PRIMARY KEY (repository, manifest, kind, target));
                    CREATE INDEX manifest_refs_by_target ON manifest_refs(target, kind, repository);
                    CREATE TABLE held_chunks (
                        upload_id TEXT NOT NULL, group_id INTEGER NOT NULL, file_id INTEGER NOT NULL, length INTEGER NOT NULL,
                        crc INTEGER NOT NULL, PRIMARY KEY (upload_id, group_id, file_id));
                    CREATE INDEX held_chunks_by_chunk ON held_chunks(group_id, file_id);
                    CREATE TABLE chunk_deletions (
                        group_id INTEGER NOT NULL, file_id INTEGER NOT NULL, length INTEGER NOT NULL, crc INTEGER NOT NULL,
                        queued_ms INTEGER NOT NULL, PRIMARY KEY (group_id, file_id));
                    """)
            // Manifests stored before v3: every descriptor they name counts as referenced, which
            // can only keep more, never less.
            for row in try Row.fetchAll(db, sql: "SELECT repository, digest, content FROM manifests") {
                let references = ManifestReferences.everyDescriptor(in: [UInt8](row["content"] as Data))
                _ = try Self.apply(
                    db, .recordReferences(repository: row["repository"], manifest: row["digest"], ManifestReference.rows(references)))
            }
        }
        // Which repositories link a blob (chunkUsers, and deleting a swept blob's links) is asked
        // by digest, which the primary key (repository first) cannot seek: PostgreSQL's index.
        migrator.registerMigration("v4") { db in
            try db.execute(sql: "CREATE INDEX repository_blobs_by_digest ON repository_blobs(digest)")
        }
        // Chunks a drain or rebalance moved away from their blobs: referenced until swept past
        // the grace (docs/gc.md, "Moving chunks").
        migrator.registerMigration("v5") { db in
            try db.execute(
                sql: """
                    CREATE TABLE moved_chunks (
                        group_id INTEGER NOT NULL, file_id INTEGER NOT NULL, length INTEGER NOT NULL, crc INTEGER NOT NULL,
                        owner TEXT NOT NULL, moved_ms INTEGER NOT NULL, PRIMARY KEY (group_id, file_id));
                    CREATE INDEX moved_chunks_by_time ON moved_chunks(moved_ms);
                    """)
        }
        // When each tag was last pulled, for retention (docs/gc.md, "Retention"); 0 is never.
        migrator.registerMigration("v6") { db in
            try db.execute(sql: "ALTER TABLE tags ADD COLUMN pulled_ms INTEGER NOT NULL DEFAULT 0")
        }
        // Two metaservers started at once on one directory take turns to open it and migrate it:
        // the second would fail on the first's tables, and opening a new file switches it to WAL,
        // which GRDB checks and which a concurrent opener can make fail.
        pool = try FileLock.holding(path + ".migrate-lock") {
            let pool = try DatabasePool(path: path, configuration: config)
            try migrator.migrate(pool)
            return pool
        }
    }

    /// Runs a GRDB call, turning its errors into ``MetadataError`` and timing it in
    /// `speedy_metaserver_database_seconds`, by the calling method's name.
    func run<T>(_ operation: String = #function, _ body: () async throws -> T) async throws(MetadataError) -> T {
        try await DatabaseMetrics.measure(operation, classify: { .unavailable("\($0)") }, body)
    }

    /// The stored blob `digest` with its chunks in order; with `repository`, only when linked there.
    static func loadBlob(_ db: Database, _ digest: String, linkedIn repository: String? = nil) throws -> BlobRecord? {
        if let repository {
            let linked = try Bool.fetchOne(
                db, sql: "SELECT 1 FROM repository_blobs WHERE repository = ? AND digest = ?", arguments: [repository, digest]) ?? false
            guard linked else { return nil }
        }
        guard let row = try Row.fetchOne(db, sql: "SELECT size FROM blobs WHERE digest = ?", arguments: [digest]),
            let parsed = Digest(parsing: digest)
        else { return nil }
        let chunks = try Row.fetchAll(
            db, sql: "SELECT group_id, file_id, length, crc FROM blob_chunks WHERE digest = ? ORDER BY seq", arguments: [digest]
        ).map(chunk)
        return BlobRecord(digest: parsed, size: UInt64(row["size"] as Int64), chunks: chunks)
    }

    static func chunk(_ row: Row) -> ChunkRef {
        ChunkRef(
            group: UInt32(row["group_id"] as Int64), fileId: UInt64(row["file_id"] as Int64), length: UInt32(row["length"] as Int64),
            crc: UInt32(row["crc"] as Int64))
    }

    // MARK: Blobs

    public func blob(_ digest: Digest, in repository: String?) async throws(MetadataError) -> BlobRecord? {
        try await run {
            try await pool.read { db in try Self.loadBlob(db, digest.description, linkedIn: repository) }
        }
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
            try await pool.read { db in
                let sizes = try Row.fetchAll(
                    db, sql: "SELECT digest, size FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?", arguments: [after ?? "", limit])
                guard let lastRow = sizes.last else { return BlobPage(blobs: [], nextAfter: nil) }
                let last: String = lastRow["digest"]
                // One range scan for the whole page's chunks rather than a query per blob.
                var chunks: [String: [ChunkRef]] = [:]
                for row in try Row.fetchAll(
                    db,
                    sql: "SELECT digest, group_id, file_id, length, crc FROM blob_chunks WHERE digest > ? AND digest <= ? ORDER BY digest, seq",
                    arguments: [after ?? "", last])
                {
                    chunks[row["digest"], default: []].append(Self.chunk(row))
                }
                let blobs = sizes.compactMap { row -> BlobRecord? in
                    let key: String = row["digest"]
                    guard let digest = Digest(parsing: key) else { return nil }
                    return BlobRecord(digest: digest, size: UInt64(row["size"] as Int64), chunks: chunks[key] ?? [])
                }
                return BlobPage(blobs: blobs, nextAfter: sizes.count == limit ? last : nil)
            }
        }
    }

    public func mountBlob(_ digest: Digest, into repository: String, from: String?) async throws(MetadataError) -> BlobRecord {
        // From anywhere: the blob need only be stored (an imageserver that has seen its bytes
        // links it, even when every repository unlinked it).
        try await writeBlob(digest, linkedIn: from) { found, now throws(MetadataError) in
            try MetadataPlan.mountBlob(digest, found: found, into: repository, now: now)
        }
    }

    public func unlinkBlob(_ digest: Digest, from repository: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in try Self.perform(db, MetadataPlan.unlinkBlob(digest, from: repository)) }
        }
    }

    // MARK: Manifests and tags

    /// The transaction's steps are ``MetadataPlan/putManifest(_:tag:now:)``'s, shared with PostgreSQL.
    public func putManifest(_ record: ManifestRecord, tag: String?) async throws(MetadataError) {
        try await run {
            try await pool.write { db in try Self.perform(db, MetadataPlan.putManifest(record, tag: tag, now: currentTimeMillis())) }
        }
    }

    public func manifest(_ reference: String, in repository: String) async throws(MetadataError) -> ManifestRecord? {
        try await run {
            try await pool.read { db in
                let digest: String
                if Digest.looksLikeDigest(reference) {
                    digest = reference
                } else {
                    guard let tagged = try String.fetchOne(
                        db, sql: "SELECT digest FROM tags WHERE repository = ? AND tag = ?", arguments: [repository, reference])
                    else { return nil }
                    digest = tagged
                }
                guard let row = try Row.fetchOne(
                    db, sql: "SELECT * FROM manifests WHERE repository = ? AND digest = ?", arguments: [repository, digest]),
                    let parsed = Digest(parsing: digest)
                else { return nil }
                let annotations = ManifestRow.annotations(row["annotations"])
                return ManifestRecord(
                    repository: repository, digest: parsed, mediaType: row["media_type"], content: [UInt8](row["content"] as Data),
                    subject: (row["subject"] as String?).flatMap { Digest(parsing: $0) }, artifactType: row["artifact_type"],
                    annotations: annotations)
            }
        }
    }

    public func deleteManifest(_ digest: Digest, in repository: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in try Self.perform(db, MetadataPlan.deleteManifest(digest, in: repository)) }
        }
    }

    public func deleteTag(_ tag: String, in repository: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in try Self.perform(db, MetadataPlan.deleteTag(tag, in: repository)) }
        }
    }

    public func tags(in repository: String, after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        let limit = MetadataChecks.pageLimit(limit)
        return try await run {
            try await pool.read { db in
                guard try Self.exists(db, repository) else { throw MetadataError.nameUnknown(repository) }
                // Lexical order ignoring case (as the spec asks), ties broken by the exact bytes.
                let rows = try String.fetchAll(
                    db,
                    sql: """
                        SELECT tag FROM tags WHERE repository = ? AND (lower(tag), tag) > (lower(?), ?)
                        ORDER BY lower(tag), tag LIMIT ?
                        """,
                    arguments: [repository, last ?? "", last ?? "", limit + 1])
                return NamePage(names: Array(rows.prefix(limit)), more: rows.count > limit)
            }
        }
    }

    public func repositories(after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        let limit = MetadataChecks.pageLimit(limit)
        return try await run {
            try await pool.read { db in
                let rows = try String.fetchAll(
                    db, sql: "SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?",
                    arguments: [last ?? "", limit + 1])
                return NamePage(names: Array(rows.prefix(limit)), more: rows.count > limit)
            }
        }
    }

    private static func exists(_ db: Database, _ repository: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM repositories WHERE name = ?", arguments: [repository]) ?? false
    }

    public func repositoryExists(_ repository: String) async throws(MetadataError) -> Bool {
        try await run { try await pool.read { db in try Self.exists(db, repository) } }
    }

    public func referrers(of digest: Digest, in repository: String, artifactType: String?) async throws(MetadataError) -> [Descriptor] {
        try await run {
            try await pool.read { db in
                var sql = "SELECT digest, media_type, length(content) AS size, artifact_type, annotations FROM manifests WHERE repository = ? AND subject = ?"
                var arguments: StatementArguments = [repository, digest.description]
                if let artifactType {
                    sql += " AND artifact_type = ?"
                    arguments += [artifactType]
                }
                return try Row.fetchAll(db, sql: sql + " ORDER BY digest", arguments: arguments).compactMap { row in
                    guard let d = Digest(parsing: row["digest"] as String) else { return nil }
                    let annotations = ManifestRow.annotations(row["annotations"])
                    return Descriptor(
                        mediaType: row["media_type"], digest: d, size: row["size"], artifactType: row["artifact_type"],
                        annotations: annotations)
                }
            }
        }
    }

    // MARK: Uploads

    public func createUpload(repository: String, client: String, limits: UploadLimits) async throws(MetadataError) -> UploadSession {
        let session = try UploadSession.starting(in: repository, limits: limits)
        try await run {
            try await pool.write { db in
                // Counted in the insert's transaction: the single writer makes check-then-insert atomic.
                try Self.checkCap(db, column: "repository", value: repository, cap: limits.perRepository, what: "repository \(repository)")
                try Self.checkCap(db, column: "client", value: client, cap: limits.perClient, what: "client \(client)")
                try db.execute(
                    sql: """
                        INSERT INTO uploads (id, repository, client, offset, chunks, hash_state, created_ms, updated_ms)
                        VALUES (?, ?, ?, 0, '[]', ?, ?, ?)
                        """,
                    arguments: [session.id, repository, client, Data(session.hashState), session.createdMs, session.createdMs])
            }
        }
        return session
    }

    /// Throws `.tooManyUploads` when the sessions whose `column` is `value` already number `cap`.
    private static func checkCap(_ db: Database, column: String, value: String, cap: Int, what: String) throws {
        guard cap < Int.max else { return }  // unlimited: skip the count
        let open = try Int.fetchOne(db, sql: "SELECT count(*) FROM uploads WHERE \(column) = ?", arguments: [value]) ?? 0
        if open >= cap { throw MetadataError.tooManyUploads("\(what) has \(open) open uploads (the limit is \(cap))") }
    }

    static func loadUpload(_ db: Database, _ id: String) throws -> UploadSession? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM uploads WHERE id = ?", arguments: [id]) else { return nil }
        let chunks = try UploadChunksColumn.decode(row["chunks"])
        return UploadSession(
            id: id, repository: row["repository"], offset: UInt64(row["offset"] as Int64), chunks: chunks,
            hashState: [UInt8](row["hash_state"] as Data), createdMs: row["created_ms"])
    }

    public func upload(_ id: String) async throws(MetadataError) -> UploadSession? {
        try await run { try await pool.read { db in try Self.loadUpload(db, id) } }
    }

    public func appendUpload(_ id: String, expectedOffset: UInt64, chunks: [ChunkRef], newOffset: UInt64, hashState: [UInt8])
        async throws(MetadataError) -> UploadSession
    {
        try MetadataChecks.append(expected: expectedOffset, chunks: chunks, newOffset: newOffset)
        return try await run {
            try await pool.write { db in
                let (session, steps) = try MetadataPlan.appendUpload(
                    try Self.loadUpload(db, id), id: id, expectedOffset: expectedOffset, chunks: chunks, newOffset: newOffset, hashState: hashState,
                    now: currentTimeMillis())
                try Self.perform(db, steps)
                return session
            }
        }
    }

    public func deleteUpload(_ id: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in try Self.perform(db, MetadataPlan.endUpload(id)) }
        }
    }

    /// Upload sessions open now, for the metaserver's metrics.
    public func uploadSessionCount() async throws(MetadataError) -> Int {
        try await run { try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM uploads") ?? 0 } }
    }

    public func expireUploads(idleSinceMs cutoff: Int64, limit: Int) async throws(MetadataError) -> [UploadSession] {
        guard limit > 0 else { return [] }
        return try await run {
            // Reading and deleting in one write transaction hands each session to one caller only.
            try await pool.write { db in
                let ids = try String.fetchAll(
                    db, sql: "SELECT id FROM uploads WHERE updated_ms < ? ORDER BY updated_ms, id LIMIT ?", arguments: [cutoff, limit])
                var sessions = try ids.compactMap { try Self.loadUpload(db, $0) }
                for i in sessions.indices {
                    // Chunks held by a request that never appended them are the caller's to delete too.
                    sessions[i].chunks += try Self.heldChunks(db, upload: sessions[i].id)
                    try Self.perform(db, MetadataPlan.endUpload(sessions[i].id))
                }
                return sessions
            }
        }
    }

    // MARK: Chunk references

    public func referencedGroups() async throws(MetadataError) -> [UInt32] {
        try await run {
            try await pool.read { db in
                var groups = Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT group_id FROM blob_chunks").map { UInt32($0) })
                for upload in try Self.openUploads(db) { groups.formUnion(upload.chunks.map(\.group)) }
                groups.formUnion(try Int64.fetchAll(db, sql: "SELECT DISTINCT group_id FROM held_chunks").map { UInt32($0) })
                groups.formUnion(try Int64.fetchAll(db, sql: "SELECT DISTINCT group_id FROM moved_chunks").map { UInt32($0) })
                return groups.sorted()
            }
        }
    }

    public func chunkReferences(group: UInt32, after: UInt64, limit: Int) async throws(MetadataError) -> ChunkReferencePage {
        let limit = max(1, limit)
        return try await run {
            try await pool.read { db in
                var references = try Row.fetchAll(
                    db,
                    sql: "SELECT file_id, length, crc, digest FROM blob_chunks WHERE group_id = ? AND file_id > ? ORDER BY file_id LIMIT ?",
                    arguments: [Int64(group), Int64(after), limit]
                ).map {
                    ChunkReference(fileId: UInt64($0["file_id"] as Int64), length: UInt32($0["length"] as Int64), crc: UInt32($0["crc"] as Int64), owner: $0["digest"])
                }
                let full = references.count == limit
                let upTo = full ? references.last!.fileId : UInt64.max
                // Uploads in progress are few; their chunks are referenced too, or fsck would call them garbage.
                for upload in try Self.openUploads(db) {
                    for chunk in upload.chunks where chunk.group == group && chunk.fileId > after && chunk.fileId <= upTo {
                        references.append(ChunkReference(fileId: chunk.fileId, length: chunk.length, crc: chunk.crc, owner: "upload:" + upload.id))
                    }
                }
                for row in try Row.fetchAll(
                    db,
                    sql: "SELECT upload_id, file_id, length, crc FROM held_chunks WHERE group_id = ? AND file_id > ? AND file_id <= ?",
                    arguments: [Int64(group), Int64(after), Int64(bitPattern: min(upTo, UInt64(Int64.max)))])
                {
                    references.append(
                        ChunkReference(
                            fileId: UInt64(row["file_id"] as Int64), length: UInt32(row["length"] as Int64), crc: UInt32(row["crc"] as Int64),
                            owner: "held:" + (row["upload_id"] as String)))
                }
                references += try Self.movedReferences(db, group: group, after: after, upTo: upTo)
                references.sort { $0.fileId < $1.fileId }
                return ChunkReferencePage(references: references, nextAfter: full ? upTo : nil)
            }
        }
    }

    private static func openUploads(_ db: Database) throws -> [UploadSession] {
        try String.fetchAll(db, sql: "SELECT id FROM uploads").compactMap { try loadUpload(db, $0) }
    }
}

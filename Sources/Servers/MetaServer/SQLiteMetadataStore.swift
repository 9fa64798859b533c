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
                try Self.insertReferences(db, repository: row["repository"], manifest: row["digest"], references)
            }
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

    /// `manifest_refs.kind` of a blob (config or layer) and of a manifest (an index entry).
    static let blobReference = 0
    static let manifestReference = 1

    static func insertReferences(_ db: Database, repository: String, manifest: String, _ references: ManifestReferences) throws {
        let targets = references.blobs.map { (blobReference, $0) } + references.manifests.map { (manifestReference, $0) }
        for (kind, target) in targets {
            try db.execute(
                sql: "INSERT OR IGNORE INTO manifest_refs (repository, manifest, kind, target) VALUES (?, ?, ?, ?)",
                arguments: [repository, manifest, kind, target.description])
        }
    }

    /// Runs a GRDB call, turning its errors into ``MetadataError`` and timing it in
    /// `speedy_metaserver_database_seconds`, by the calling method's name.
    func run<T>(_ operation: String = #function, _ body: () async throws -> T) async throws(MetadataError) -> T {
        try await DatabaseMetrics.measure(operation, classify: { .unavailable("\($0)") }, body)
    }

    static func ensureRepository(_ db: Database, _ name: String) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO repositories (name, created_ms) VALUES (?, ?)", arguments: [name, currentTimeMillis()])
    }

    static func loadBlob(_ db: Database, _ digest: String) throws -> BlobRecord? {
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
            try await pool.read { db in
                if let repository {
                    let linked = try Bool.fetchOne(
                        db, sql: "SELECT 1 FROM repository_blobs WHERE repository = ? AND digest = ?",
                        arguments: [repository, digest.description]) ?? false
                    guard linked else { return nil }
                }
                return try Self.loadBlob(db, digest.description)
            }
        }
    }

    public func commitBlob(_ record: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(record)
        return try await run {
            try await pool.write { db in
                try Self.ensureRepository(db, repository)
                let key = record.digest.description
                let stored = try Self.storeBlob(db, record)
                try Self.link(db, key, into: repository)
                return stored
            }
        }
    }

    /// Inserts `record` unless its digest is stored; either way the blob counts as referenced now.
    static func storeBlob(_ db: Database, _ record: BlobRecord) throws -> BlobRecord {
        let key = record.digest.description
        if let existing = try loadBlob(db, key) {
            try touchBlob(db, key)
            return existing
        }
        let now = currentTimeMillis()
        try db.execute(
            sql: "INSERT INTO blobs (digest, size, created_ms, ref_ms) VALUES (?, ?, ?, ?)", arguments: [key, Int64(record.size), now, now])
        try insertChunks(db, record)
        return record
    }

    /// Moves the blob's garbage collection fence to now: whatever just referenced it is safe.
    private static func touchBlob(_ db: Database, _ digest: String) throws {
        try db.execute(sql: "UPDATE blobs SET ref_ms = ? WHERE digest = ?", arguments: [currentTimeMillis(), digest])
    }

    private static func insertChunks(_ db: Database, _ record: BlobRecord) throws {
        for (seq, chunk) in record.chunks.enumerated() {
            try db.execute(
                sql: "INSERT INTO blob_chunks (digest, seq, group_id, file_id, length, crc) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [record.digest.description, seq, Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc)])
        }
    }

    static func link(_ db: Database, _ digest: String, into repository: String) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO repository_blobs (repository, digest) VALUES (?, ?)", arguments: [repository, digest])
    }

    public func repairBlob(_ record: BlobRecord, replacing stale: [ChunkRef], repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(record)
        return try await run {
            try await pool.write { db in
                let key = record.digest.description
                guard let existing = try Self.loadBlob(db, key) else {
                    _ = try Self.storeBlob(db, record)
                    try Self.ensureRepository(db, repository)
                    try Self.link(db, key, into: repository)
                    return record
                }
                // Someone else replaced the chunks since the caller read them: theirs stand.
                guard existing.chunks == stale else { return existing }
                try db.execute(sql: "UPDATE blobs SET size = ?, ref_ms = ? WHERE digest = ?", arguments: [Int64(record.size), currentTimeMillis(), key])
                try db.execute(sql: "DELETE FROM blob_chunks WHERE digest = ?", arguments: [key])
                try Self.insertChunks(db, record)
                try Self.ensureRepository(db, repository)
                try Self.link(db, key, into: repository)
                return record
            }
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
        try await run {
            try await pool.write { db in
                let key = digest.description
                // From anywhere: the blob need only be stored (an imageserver that has seen its
                // bytes links it, even when every repository unlinked it).
                var source = true
                if let from {
                    source = try Bool.fetchOne(
                        db, sql: "SELECT 1 FROM repository_blobs WHERE digest = ? AND repository = ?", arguments: [key, from]) ?? false
                }
                guard source, let record = try Self.loadBlob(db, key) else { throw MetadataError.blobUnknown(digest) }
                try Self.ensureRepository(db, repository)
                try Self.link(db, key, into: repository)
                try Self.touchBlob(db, key)
                return record
            }
        }
    }

    public func unlinkBlob(_ digest: Digest, from repository: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in
                try db.execute(
                    sql: "DELETE FROM repository_blobs WHERE repository = ? AND digest = ?", arguments: [repository, digest.description])
                if db.changesCount == 0 { throw MetadataError.blobUnknown(digest) }
            }
        }
    }

    // MARK: Manifests and tags

    public func putManifest(_ record: ManifestRecord, tag: String?) async throws(MetadataError) {
        let annotations = try? record.annotations.map { String(decoding: try WireJSON.encoder().encode($0), as: UTF8.self) }
        try await run {
            try await pool.write { db in
                let digest = record.digest.description
                // Checked in the transaction that stores the manifest: a blob or manifest swept
                // since the imageserver looked makes the push fail instead of dangle.
                if let checked = record.references {
                    try Self.requireReferences(db, checked, in: record.repository)
                }
                try Self.ensureRepository(db, record.repository)
                let now = currentTimeMillis()
                try db.execute(
                    sql: """
                        INSERT INTO manifests
                            (repository, digest, media_type, content, subject, artifact_type, annotations, created_ms, ref_ms)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                        ON CONFLICT(repository, digest) DO UPDATE SET ref_ms = excluded.ref_ms
                        """,
                    arguments: [
                        record.repository, digest, record.mediaType, Data(record.content),
                        record.subject?.description, record.artifactType, annotations ?? nil, now, now,
                    ])
                // Every descriptor the content names is kept, foreign layers included (a client may
                // push one anyway); only those the imageserver listed had to exist.
                var references = ManifestReferences.everyDescriptor(in: record.content)
                if let checked = record.references {
                    references.blobs += checked.blobs
                    references.manifests += checked.manifests
                }
                try Self.insertReferences(db, repository: record.repository, manifest: digest, references)
                for blob in Set(references.blobs) { try Self.touchBlob(db, blob.description) }
                if let tag {
                    try db.execute(
                        sql: """
                            INSERT INTO tags (repository, tag, digest, updated_ms) VALUES (?, ?, ?, ?)
                            ON CONFLICT(repository, tag) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms
                            """,
                        arguments: [record.repository, tag, digest, now])
                }
            }
        }
    }

    /// Throws `.blobUnknown` or `.manifestUnknown` for the first reference not stored in `repository`.
    private static func requireReferences(_ db: Database, _ references: ManifestReferences, in repository: String) throws {
        for blob in references.blobs {
            let linked = try Bool.fetchOne(
                db, sql: "SELECT 1 FROM repository_blobs WHERE repository = ? AND digest = ?", arguments: [repository, blob.description])
            if linked != true { throw MetadataError.blobUnknown(blob) }
        }
        for manifest in references.manifests {
            let stored = try Bool.fetchOne(
                db, sql: "SELECT 1 FROM manifests WHERE repository = ? AND digest = ?", arguments: [repository, manifest.description])
            if stored != true { throw MetadataError.manifestUnknown(manifest.description) }
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
                let annotations = (row["annotations"] as String?).flatMap {
                    try? WireJSON.decoder().decode([String: String].self, from: Data($0.utf8))
                }
                return ManifestRecord(
                    repository: repository, digest: parsed, mediaType: row["media_type"], content: [UInt8](row["content"] as Data),
                    subject: (row["subject"] as String?).flatMap { Digest(parsing: $0) }, artifactType: row["artifact_type"],
                    annotations: annotations)
            }
        }
    }

    public func deleteManifest(_ digest: Digest, in repository: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM tags WHERE repository = ? AND digest = ?", arguments: [repository, digest.description])
                try Self.removeManifest(db, repository: repository, digest: digest.description)
                if db.changesCount == 0 { throw MetadataError.manifestUnknown(digest.description) }
            }
        }
    }

    public func deleteTag(_ tag: String, in repository: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM tags WHERE repository = ? AND tag = ?", arguments: [repository, tag])
                if db.changesCount == 0 { throw MetadataError.manifestUnknown(tag) }
            }
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
                    let annotations = (row["annotations"] as String?).flatMap {
                        try? WireJSON.decoder().decode([String: String].self, from: Data($0.utf8))
                    }
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
        let chunks = try WireJSON.decoder().decode([ChunkRef].self, from: Data((row["chunks"] as String).utf8))
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
                guard var session = try Self.loadUpload(db, id) else { throw MetadataError.uploadUnknown(id) }
                guard session.offset == expectedOffset else { throw MetadataError.uploadOffsetMismatch(id: id, actual: session.offset) }
                session.chunks += chunks
                session.offset = newOffset
                session.hashState = hashState
                let encoded = String(decoding: try WireJSON.encoder().encode(session.chunks), as: UTF8.self)
                try db.execute(
                    sql: "UPDATE uploads SET offset = ?, chunks = ?, hash_state = ?, updated_ms = ? WHERE id = ?",
                    arguments: [Int64(newOffset), encoded, Data(hashState), currentTimeMillis(), id])
                // Appended chunks are the session's own now; a hold on them is no longer needed.
                for chunk in chunks {
                    try db.execute(
                        sql: "DELETE FROM held_chunks WHERE upload_id = ? AND group_id = ? AND file_id = ?",
                        arguments: [id, Int64(chunk.group), Int64(chunk.fileId)])
                }
                return session
            }
        }
    }

    public func deleteUpload(_ id: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM uploads WHERE id = ?", arguments: [id])
                if db.changesCount == 0 { throw MetadataError.uploadUnknown(id) }
                try db.execute(sql: "DELETE FROM held_chunks WHERE upload_id = ?", arguments: [id])
            }
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
                    try db.execute(sql: "DELETE FROM uploads WHERE id = ?", arguments: [sessions[i].id])
                    try db.execute(sql: "DELETE FROM held_chunks WHERE upload_id = ?", arguments: [sessions[i].id])
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
                references.sort { $0.fileId < $1.fileId }
                return ChunkReferencePage(references: references, nextAfter: full ? upTo : nil)
            }
        }
    }

    private static func openUploads(_ db: Database) throws -> [UploadSession] {
        try String.fetchAll(db, sql: "SELECT id FROM uploads").compactMap { try loadUpload(db, $0) }
    }
}

import Foundation
import GRDB
import SpeedyCore

/// The metaserver's ``SpeedyCore/MetadataStore``: SQLite through GRDB, in WAL mode so reads run
/// beside the single writer. Schema in docs/metadata.md.
public final class SQLiteMetadataStore: MetadataStore {
    private let pool: DatabasePool

    /// Opens or creates the database at `path` and migrates it.
    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(10)
        pool = try DatabasePool(path: path, configuration: config)
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
        try migrator.migrate(pool)
    }

    /// Runs a GRDB call, turning its errors into ``MetadataError``.
    private func run<T>(_ body: () async throws -> T) async throws(MetadataError) -> T {
        do {
            return try await body()
        } catch let error as MetadataError {
            throw error
        } catch {
            throw .unavailable("\(error)")
        }
    }

    private static func ensureRepository(_ db: Database, _ name: String) throws {
        try db.execute(sql: "INSERT OR IGNORE INTO repositories (name, created_ms) VALUES (?, ?)", arguments: [name, currentTimeMillis()])
    }

    private static func loadBlob(_ db: Database, _ digest: String) throws -> BlobRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT size FROM blobs WHERE digest = ?", arguments: [digest]),
            let parsed = Digest(parsing: digest)
        else { return nil }
        let chunks = try Row.fetchAll(
            db, sql: "SELECT group_id, file_id, length, crc FROM blob_chunks WHERE digest = ? ORDER BY seq", arguments: [digest]
        ).map { ChunkRef(group: UInt32($0["group_id"] as Int64), fileId: UInt64($0["file_id"] as Int64), length: UInt32($0["length"] as Int64), crc: UInt32($0["crc"] as Int64)) }
        return BlobRecord(digest: parsed, size: UInt64(row["size"] as Int64), chunks: chunks)
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
        guard record.size == record.chunks.reduce(0, { $0 + UInt64($1.length) }) else {
            throw .invalid("blob size \(record.size) is not the sum of its chunks")
        }
        return try await run {
            try await pool.write { db in
                try Self.ensureRepository(db, repository)
                let key = record.digest.description
                let stored: BlobRecord
                if let existing = try Self.loadBlob(db, key) {
                    stored = existing
                } else {
                    try db.execute(
                        sql: "INSERT INTO blobs (digest, size, created_ms) VALUES (?, ?, ?)",
                        arguments: [key, Int64(record.size), currentTimeMillis()])
                    for (seq, chunk) in record.chunks.enumerated() {
                        try db.execute(
                            sql: "INSERT INTO blob_chunks (digest, seq, group_id, file_id, length, crc) VALUES (?, ?, ?, ?, ?, ?)",
                            arguments: [key, seq, Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc)])
                    }
                    stored = record
                }
                try db.execute(sql: "INSERT OR IGNORE INTO repository_blobs (repository, digest) VALUES (?, ?)", arguments: [repository, key])
                return stored
            }
        }
    }

    public func mountBlob(_ digest: Digest, into repository: String, from: String?) async throws(MetadataError) -> BlobRecord {
        try await run {
            try await pool.write { db in
                let key = digest.description
                let source = try Bool.fetchOne(
                    db,
                    sql: from == nil
                        ? "SELECT 1 FROM repository_blobs WHERE digest = ?"
                        : "SELECT 1 FROM repository_blobs WHERE digest = ? AND repository = ?",
                    arguments: from == nil ? [key] : [key, from!]) ?? false
                guard source, let record = try Self.loadBlob(db, key) else { throw MetadataError.blobUnknown(digest) }
                try Self.ensureRepository(db, repository)
                try db.execute(sql: "INSERT OR IGNORE INTO repository_blobs (repository, digest) VALUES (?, ?)", arguments: [repository, key])
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
                try Self.ensureRepository(db, record.repository)
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO manifests
                            (repository, digest, media_type, content, subject, artifact_type, annotations, created_ms)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                        """,
                    arguments: [
                        record.repository, record.digest.description, record.mediaType, Data(record.content),
                        record.subject?.description, record.artifactType, annotations ?? nil, currentTimeMillis(),
                    ])
                if let tag {
                    try db.execute(
                        sql: """
                            INSERT INTO tags (repository, tag, digest, updated_ms) VALUES (?, ?, ?, ?)
                            ON CONFLICT(repository, tag) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms
                            """,
                        arguments: [record.repository, tag, record.digest.description, currentTimeMillis()])
                }
            }
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
                try db.execute(sql: "DELETE FROM manifests WHERE repository = ? AND digest = ?", arguments: [repository, digest.description])
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
        try await run {
            try await pool.read { db in
                guard try Self.exists(db, repository) else { throw MetadataError.nameUnknown(repository) }
                // Lexical order ignoring case (as the spec asks), ties broken by the exact bytes.
                let rows = try String.fetchAll(
                    db,
                    sql: """
                        SELECT tag FROM tags WHERE repository = ? AND (lower(tag), tag) > (lower(?), ?)
                        ORDER BY lower(tag), tag LIMIT ?
                        """,
                    arguments: [repository, last ?? "", last ?? "", max(0, limit) + 1])
                return NamePage(names: Array(rows.prefix(max(0, limit))), more: rows.count > limit)
            }
        }
    }

    public func repositories(after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        try await run {
            try await pool.read { db in
                let rows = try String.fetchAll(
                    db, sql: "SELECT name FROM repositories WHERE name > ? ORDER BY name LIMIT ?",
                    arguments: [last ?? "", max(0, limit) + 1])
                return NamePage(names: Array(rows.prefix(max(0, limit))), more: rows.count > limit)
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

    public func createUpload(repository: String) async throws(MetadataError) -> UploadSession {
        let session = UploadSession(
            id: UUID().uuidString.lowercased(), repository: repository, offset: 0, chunks: [],
            hashState: SHA256Hasher().savedState, createdMs: currentTimeMillis())
        try await run {
            try await pool.write { db in
                try db.execute(
                    sql: "INSERT INTO uploads (id, repository, offset, chunks, hash_state, created_ms, updated_ms) VALUES (?, ?, 0, '[]', ?, ?, ?)",
                    arguments: [session.id, repository, Data(session.hashState), session.createdMs, session.createdMs])
            }
        }
        return session
    }

    private static func loadUpload(_ db: Database, _ id: String) throws -> UploadSession? {
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
        guard newOffset == expectedOffset + chunks.reduce(0, { $0 + UInt64($1.length) }) else {
            throw .invalid("new offset \(newOffset) is not the old offset plus the chunks' lengths")
        }
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
                return session
            }
        }
    }

    public func deleteUpload(_ id: String) async throws(MetadataError) {
        try await run {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM uploads WHERE id = ?", arguments: [id])
                if db.changesCount == 0 { throw MetadataError.uploadUnknown(id) }
            }
        }
    }

    // MARK: Chunk references

    public func referencedGroups() async throws(MetadataError) -> [UInt32] {
        try await run {
            try await pool.read { db in
                var groups = Set(try Int64.fetchAll(db, sql: "SELECT DISTINCT group_id FROM blob_chunks").map { UInt32($0) })
                for upload in try Self.openUploads(db) { groups.formUnion(upload.chunks.map(\.group)) }
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
                references.sort { $0.fileId < $1.fileId }
                return ChunkReferencePage(references: references, nextAfter: full ? upTo : nil)
            }
        }
    }

    private static func openUploads(_ db: Database) throws -> [UploadSession] {
        try String.fetchAll(db, sql: "SELECT id FROM uploads").compactMap { try loadUpload(db, $0) }
    }
}

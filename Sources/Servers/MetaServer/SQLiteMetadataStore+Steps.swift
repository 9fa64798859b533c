import Foundation
import GRDB
import SpeedyCore

/// How SQLite runs the ``MetadataStep``s the metadata logic is written in (``MetadataPlan``):
/// one statement or a few for each, in the caller's transaction.
extension SQLiteMetadataStore {
    /// Runs, in one write transaction, the steps `plan` makes of the stored blob `digest` (with
    /// `repository`, only when linked there; nil when there is none); answers the blob it keeps.
    func writeBlob(
        _ digest: Digest, linkedIn repository: String? = nil, operation: String = #function,
        _ plan: @escaping @Sendable (_ existing: BlobRecord?, _ now: Int64) throws(MetadataError) -> MetadataPlan.BlobOutcome
    ) async throws(MetadataError) -> BlobRecord {
        try await run(operation) {
            try await pool.write { db in
                let (blob, steps) = try plan(try Self.loadBlob(db, digest.description, linkedIn: repository), currentTimeMillis())
                try Self.perform(db, steps)
                return blob
            }
        }
    }

    /// Runs `steps` in order in the caller's transaction; throws the error of the first that fails.
    static func perform(_ db: Database, _ steps: [MetadataStep]) throws {
        for step in steps {
            switch step {
            case .require(let lookup):
                if let error = lookup.failure(found: try found(db, lookup)) { throw error }
            case .write(let write, let orElse):
                if try apply(db, write) == 0, let orElse { throw orElse }
            }
        }
    }

    /// Of the digests `lookup` asks about, those that are there.
    static func found(_ db: Database, _ lookup: MetadataLookup) throws -> Set<String> {
        let sql: String
        let repository: String
        switch lookup {
        case .linkedBlobs(_, let name):
            (sql, repository) = ("SELECT 1 FROM repository_blobs WHERE repository = ? AND digest = ?", name)
        case .storedManifests(_, let name):
            (sql, repository) = ("SELECT 1 FROM manifests WHERE repository = ? AND digest = ?", name)
        }
        var found = Set<String>()
        for digest in lookup.digests.map(\.description) {
            if try Bool.fetchOne(db, sql: sql, arguments: [repository, digest]) == true { found.insert(digest) }
        }
        return found
    }

    /// Makes one write; returns how many rows it changed.
    static func apply(_ db: Database, _ write: MetadataWrite) throws -> Int {
        let before = db.totalChangesCount
        switch write {
        case .ensureRepository(let name, let now):
            try db.execute(sql: "INSERT OR IGNORE INTO repositories (name, created_ms) VALUES (?, ?)", arguments: [name, now])
        case .insertBlob(let digest, let size, let now):
            try db.execute(
                sql: "INSERT INTO blobs (digest, size, created_ms, ref_ms) VALUES (?, ?, ?, ?)", arguments: [digest, Int64(size), now, now])
        case .resizeBlob(let digest, let size, let now):
            try db.execute(sql: "UPDATE blobs SET size = ?, ref_ms = ? WHERE digest = ?", arguments: [Int64(size), now, digest])
        case .touchBlobs(let digests, let now):
            for digest in digests {
                try db.execute(sql: "UPDATE blobs SET ref_ms = ? WHERE digest = ?", arguments: [now, digest])
            }
        case .deleteBlob(let digest):
            try db.execute(sql: "DELETE FROM blobs WHERE digest = ?", arguments: [digest])
        case .insertChunks(let record):
            for (seq, chunk) in record.chunks.enumerated() {
                try db.execute(
                    sql: "INSERT INTO blob_chunks (digest, seq, group_id, file_id, length, crc) VALUES (?, ?, ?, ?, ?, ?)",
                    arguments: [record.digest.description, seq, Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc)])
            }
        case .deleteChunks(let digest):
            try db.execute(sql: "DELETE FROM blob_chunks WHERE digest = ?", arguments: [digest])
        case .link(let digest, let repository):
            try db.execute(sql: "INSERT OR IGNORE INTO repository_blobs (repository, digest) VALUES (?, ?)", arguments: [repository, digest])
        case .unlink(let digest, let repository):
            try db.execute(sql: "DELETE FROM repository_blobs WHERE repository = ? AND digest = ?", arguments: [repository, digest])
        case .unlinkEverywhere(let digest):
            try db.execute(sql: "DELETE FROM repository_blobs WHERE digest = ?", arguments: [digest])
        case .queueChunkDeletions(let chunks, let now):
            for chunk in chunks {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO chunk_deletions (group_id, file_id, length, crc, queued_ms) VALUES (?, ?, ?, ?, ?)",
                    arguments: [Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc), now])
            }
        case .replaceChunk(let digest, let from, let to):
            try db.execute(
                sql: """
                    UPDATE blob_chunks SET group_id = ?, file_id = ?
                    WHERE digest = ? AND group_id = ? AND file_id = ? AND length = ? AND crc = ?
                    """,
                arguments: [Int64(to.group), Int64(to.fileId), digest, Int64(from.group), Int64(from.fileId), Int64(from.length), Int64(from.crc)])
        case .recordMovedChunk(let chunk, let owner, let now):
            try db.execute(
                sql: "INSERT OR IGNORE INTO moved_chunks (group_id, file_id, length, crc, owner, moved_ms) VALUES (?, ?, ?, ?, ?, ?)",
                arguments: [Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc), owner, now])
        case .forgetMovedChunks(let keys):
            for key in keys {
                try db.execute(sql: "DELETE FROM moved_chunks WHERE group_id = ? AND file_id = ?", arguments: [Int64(key.group), Int64(key.fileId)])
            }
        case .storeManifest(let row):
            try db.execute(
                sql: """
                    INSERT INTO manifests
                        (repository, digest, media_type, content, subject, artifact_type, annotations, created_ms, ref_ms)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(repository, digest) DO UPDATE SET ref_ms = excluded.ref_ms
                    """,
                arguments: [
                    row.repository, row.digest, row.mediaType, Data(row.content), row.subject, row.artifactType, row.annotations, row.now, row.now,
                ])
        case .deleteManifest(let repository, let digest):
            try db.execute(sql: "DELETE FROM manifests WHERE repository = ? AND digest = ?", arguments: [repository, digest])
        case .recordReferences(let repository, let manifest, let references):
            for reference in references {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO manifest_refs (repository, manifest, kind, target) VALUES (?, ?, ?, ?)",
                    arguments: [repository, manifest, reference.kind.rawValue, reference.target])
            }
        case .deleteReferences(let repository, let manifest):
            try db.execute(sql: "DELETE FROM manifest_refs WHERE repository = ? AND manifest = ?", arguments: [repository, manifest])
        case .setTag(let repository, let tag, let digest, let now):
            try db.execute(
                sql: """
                    INSERT INTO tags (repository, tag, digest, updated_ms) VALUES (?, ?, ?, ?)
                    ON CONFLICT(repository, tag) DO UPDATE SET digest = excluded.digest, updated_ms = excluded.updated_ms
                    """,
                arguments: [repository, tag, digest, now])
        case .deleteTag(let repository, let tag):
            try db.execute(sql: "DELETE FROM tags WHERE repository = ? AND tag = ?", arguments: [repository, tag])
        case .deleteTags(let repository, let manifest):
            try db.execute(sql: "DELETE FROM tags WHERE repository = ? AND digest = ?", arguments: [repository, manifest])
        case .updateUpload(let session, let now):
            try db.execute(
                sql: "UPDATE uploads SET offset = ?, chunks = ?, hash_state = ?, updated_ms = ? WHERE id = ?",
                arguments: [Int64(session.offset), try UploadChunksColumn.encode(session.chunks), Data(session.hashState), now, session.id])
        case .touchUpload(let id, let now):
            try db.execute(sql: "UPDATE uploads SET updated_ms = ? WHERE id = ?", arguments: [now, id])
        case .deleteUpload(let id):
            try db.execute(sql: "DELETE FROM uploads WHERE id = ?", arguments: [id])
        case .holdChunks(let chunks, let id):
            for chunk in chunks {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO held_chunks (upload_id, group_id, file_id, length, crc) VALUES (?, ?, ?, ?, ?)",
                    arguments: [id, Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc)])
            }
        case .releaseHeldChunks(nil, let id):
            try db.execute(sql: "DELETE FROM held_chunks WHERE upload_id = ?", arguments: [id])
        case .releaseHeldChunks(let chunks?, let id):
            for chunk in chunks {
                try db.execute(
                    sql: "DELETE FROM held_chunks WHERE upload_id = ? AND group_id = ? AND file_id = ?",
                    arguments: [id, Int64(chunk.group), Int64(chunk.fileId)])
            }
        }
        return db.totalChangesCount - before
    }
}

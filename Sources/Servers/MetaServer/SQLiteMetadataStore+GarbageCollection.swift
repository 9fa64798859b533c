import Foundation
import GRDB
import SpeedyCore

/// Held chunks, atomic upload completion and the metadata sweep (docs/gc.md).
extension SQLiteMetadataStore {
    public func holdChunks(_ chunks: [ChunkRef], upload id: String) async throws(MetadataError) {
        try MetadataChecks.chunks(chunks)
        try await run {
            try await pool.write { db in
                try db.execute(sql: "UPDATE uploads SET updated_ms = ? WHERE id = ?", arguments: [currentTimeMillis(), id])
                if db.changesCount == 0 { throw MetadataError.uploadUnknown(id) }
                for chunk in chunks {
                    try db.execute(
                        sql: "INSERT OR IGNORE INTO held_chunks (upload_id, group_id, file_id, length, crc) VALUES (?, ?, ?, ?, ?)",
                        arguments: [id, Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc)])
                }
            }
        }
    }

    public func completeUpload(_ id: String, blob: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(blob)
        return try await run {
            try await pool.write { db in
                try db.execute(sql: "DELETE FROM uploads WHERE id = ?", arguments: [id])
                if db.changesCount == 0 { throw MetadataError.uploadUnknown(id) }
                try db.execute(sql: "DELETE FROM held_chunks WHERE upload_id = ?", arguments: [id])
                try Self.ensureRepository(db, repository)
                let stored = try Self.storeBlob(db, blob)
                try Self.link(db, blob.digest.description, into: repository)
                return stored
            }
        }
    }

    public func sweep(graceMs: Int64, limit: Int, dryRun: Bool) async throws(MetadataError) -> MetadataSweep {
        guard graceMs >= 0 else { throw .invalid("the grace period must not be negative") }
        let limit = min(max(limit, 1), 100_000)
        return try await run {
            try await pool.writeWithoutTransaction { db in
                var result = MetadataSweep(manifests: [], blobs: [])
                try db.inTransaction(.immediate) {
                    let cutoff = currentTimeMillis() - graceMs
                    // Deleting an index or a subject can free more manifests: repeat until none.
                    while result.count < limit {
                        let batch = try Self.garbageManifests(db, cutoff: cutoff, limit: limit - result.count)
                        if batch.isEmpty { break }
                        for manifest in batch {
                            try Self.removeManifest(db, repository: manifest.repository, digest: manifest.digest.description)
                        }
                        result.manifests += batch
                    }
                    if result.count < limit {
                        for blob in try Self.garbageBlobs(db, cutoff: cutoff, limit: limit - result.count) {
                            try Self.removeBlob(db, blob)
                            result.blobs.append(blob)
                        }
                    }
                    return dryRun ? .rollback : .commit
                }
                return result
            }
        }
    }

    /// Untagged manifests no index in their repository lists and whose subject (if any) is gone.
    private static func garbageManifests(_ db: Database, cutoff: Int64, limit: Int) throws -> [SweptManifest] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT m.repository, m.digest, length(m.content) AS size FROM manifests m
                WHERE m.ref_ms < ?
                  AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
                  AND NOT EXISTS (SELECT 1 FROM manifest_refs r
                                  WHERE r.target = m.digest AND r.kind = ? AND r.repository = m.repository)
                  AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s
                                                        WHERE s.repository = m.repository AND s.digest = m.subject))
                ORDER BY m.ref_ms LIMIT ?
                """,
            arguments: [cutoff, manifestReference, limit]
        ).compactMap { row in
            Digest(parsing: row["digest"] as String).map { SweptManifest(repository: row["repository"], digest: $0, size: row["size"]) }
        }
    }

    /// Blobs no manifest in any repository refers to.
    private static func garbageBlobs(_ db: Database, cutoff: Int64, limit: Int) throws -> [BlobRecord] {
        let digests = try String.fetchAll(
            db,
            sql: """
                SELECT b.digest FROM blobs b
                WHERE b.ref_ms < ? AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.target = b.digest AND r.kind = ?)
                ORDER BY b.ref_ms LIMIT ?
                """,
            arguments: [cutoff, blobReference, limit])
        return try digests.compactMap { try loadBlob(db, $0) }
    }

    /// Deletes a manifest row and the references it made; `changesCount` is the manifest's.
    static func removeManifest(_ db: Database, repository: String, digest: String) throws {
        try db.execute(sql: "DELETE FROM manifest_refs WHERE repository = ? AND manifest = ?", arguments: [repository, digest])
        try db.execute(sql: "DELETE FROM manifests WHERE repository = ? AND digest = ?", arguments: [repository, digest])
    }

    /// Deletes a blob everywhere and queues its chunks for deletion, in the caller's transaction.
    private static func removeBlob(_ db: Database, _ blob: BlobRecord) throws {
        let key = blob.digest.description
        let now = currentTimeMillis()
        for chunk in blob.chunks {
            try db.execute(
                sql: "INSERT OR IGNORE INTO chunk_deletions (group_id, file_id, length, crc, queued_ms) VALUES (?, ?, ?, ?, ?)",
                arguments: [Int64(chunk.group), Int64(chunk.fileId), Int64(chunk.length), Int64(chunk.crc), now])
        }
        try db.execute(sql: "DELETE FROM repository_blobs WHERE digest = ?", arguments: [key])
        try db.execute(sql: "DELETE FROM blob_chunks WHERE digest = ?", arguments: [key])
        try db.execute(sql: "DELETE FROM blobs WHERE digest = ?", arguments: [key])
    }

    public func chunkDeletions(limit: Int) async throws(MetadataError) -> [ChunkRef] {
        let limit = min(max(limit, 1), 100_000)
        return try await run {
            try await pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT group_id, file_id, length, crc FROM chunk_deletions ORDER BY queued_ms, group_id, file_id LIMIT ?",
                    arguments: [limit]
                ).map(Self.chunk)
            }
        }
    }

    public func forgetChunkDeletions(_ chunks: [ChunkKey]) async throws(MetadataError) {
        try await run {
            try await pool.write { db in
                for key in chunks {
                    try db.execute(
                        sql: "DELETE FROM chunk_deletions WHERE group_id = ? AND file_id = ?", arguments: [Int64(key.group), Int64(key.fileId)])
                }
            }
        }
    }

    /// The chunks requests streaming into upload `id` hold.
    static func heldChunks(_ db: Database, upload id: String) throws -> [ChunkRef] {
        try Row.fetchAll(db, sql: "SELECT group_id, file_id, length, crc FROM held_chunks WHERE upload_id = ?", arguments: [id]).map(chunk)
    }
}

extension ManifestReferences {
    private struct Descriptor: Decodable {
        var digest: String
    }

    private struct Shape: Decodable {
        var config: Descriptor?
        var layers: [Descriptor]?
        var manifests: [Descriptor]?
    }

    /// Every descriptor `content` names, foreign layers included: for manifests stored without
    /// the imageserver's list, where keeping too much is safe and keeping too little is not.
    static func everyDescriptor(in content: [UInt8]) -> ManifestReferences {
        guard let shape = try? JSONDecoder().decode(Shape.self, from: Data(content)) else {
            return ManifestReferences(blobs: [], manifests: [])
        }
        let blobs = ([shape.config].compactMap { $0 } + (shape.layers ?? [])).compactMap { Digest(parsing: $0.digest) }
        return ManifestReferences(blobs: blobs, manifests: (shape.manifests ?? []).compactMap { Digest(parsing: $0.digest) })
    }
}

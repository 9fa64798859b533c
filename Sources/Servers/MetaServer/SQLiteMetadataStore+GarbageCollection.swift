import Foundation
import GRDB
import SpeedyCore

/// Held chunks, atomic upload completion and the metadata sweep (docs/gc.md).
extension SQLiteMetadataStore {
    public func holdChunks(_ chunks: [ChunkRef], upload id: String) async throws(MetadataError) {
        try MetadataChecks.chunks(chunks)
        try await run {
            try await pool.write { db in try Self.perform(db, MetadataPlan.holdChunks(chunks, upload: id, now: currentTimeMillis())) }
        }
    }

    public func completeUpload(_ id: String, blob: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(blob)
        return try await writeBlob(blob.digest) { existing, now in
            MetadataPlan.completeUpload(id, blob: blob, existing: existing, repository: repository, now: now)
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
                            try Self.perform(db, MetadataPlan.removeManifest(manifest.digest.description, in: manifest.repository))
                        }
                        result.manifests += batch
                    }
                    if result.count < limit {
                        for blob in try Self.garbageBlobs(db, cutoff: cutoff, limit: limit - result.count) {
                            try Self.perform(db, MetadataPlan.removeBlob(blob, now: currentTimeMillis()))
                            result.blobs.append(blob)
                        }
                    }
                    // After the blobs: a moved chunk that a blob swept just now still named is free now too.
                    if result.count < limit {
                        result.movedChunks = try Self.garbageMovedChunks(db, cutoff: cutoff, limit: limit - result.count)
                        try Self.perform(db, MetadataPlan.retireMovedChunks(result.movedChunks, now: currentTimeMillis()))
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
            arguments: [cutoff, ManifestReference.Kind.manifest.rawValue, limit]
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
            arguments: [cutoff, ManifestReference.Kind.blob.rawValue, limit])
        return try digests.compactMap { try loadBlob(db, $0) }
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

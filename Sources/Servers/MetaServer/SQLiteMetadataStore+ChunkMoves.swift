import GRDB
import SpeedyCore

/// Moving chunks between groups (drain, rebalance) and what each group holds.
extension SQLiteMetadataStore {
    /// The blob is read and switched in one write transaction: SQLite's single writer orders it
    /// against every commit, repair and sweep (docs/gc.md, "Moving chunks").
    public func moveChunk(of digest: Digest, from: ChunkRef, to: ChunkRef) async throws(MetadataError) -> Bool {
        try MetadataChecks.move(from: from, to: to)
        return try await run {
            try await pool.write { db in
                let (moved, steps) = MetadataPlan.moveChunk(
                    of: digest, from: from, to: to, existing: try Self.loadBlob(db, digest.description), now: currentTimeMillis())
                try Self.perform(db, steps)
                return moved
            }
        }
    }

    public func groupUsage() async throws(MetadataError) -> [GroupUsage] {
        try await run {
            try await pool.read { db in
                try Row.fetchAll(
                    db, sql: "SELECT group_id, COUNT(*) AS chunks, SUM(length) AS bytes FROM blob_chunks GROUP BY group_id ORDER BY group_id"
                ).map { GroupUsage(group: UInt32($0["group_id"] as Int64), chunks: UInt64($0["chunks"] as Int64), bytes: UInt64($0["bytes"] as Int64)) }
            }
        }
    }

    /// Moved chunks (`moved_chunks`) of `group` with file ids in `after...upTo`, for
    /// ``chunkReferences(group:after:limit:)``: referenced until swept.
    static func movedReferences(_ db: Database, group: UInt32, after: UInt64, upTo: UInt64) throws -> [ChunkReference] {
        try Row.fetchAll(
            db, sql: "SELECT file_id, length, crc, owner FROM moved_chunks WHERE group_id = ? AND file_id > ? AND file_id <= ?",
            arguments: [Int64(group), Int64(after), Int64(bitPattern: min(upTo, UInt64(Int64.max)))]
        ).map {
            ChunkReference(
                fileId: UInt64($0["file_id"] as Int64), length: UInt32($0["length"] as Int64), crc: UInt32($0["crc"] as Int64),
                owner: "moved:" + ($0["owner"] as String))
        }
    }

    /// Up to `limit` chunks moved before `cutoff` that no blob and no request's hold names (a
    /// chunk two blobs shared stays while the other still lists it).
    static func garbageMovedChunks(_ db: Database, cutoff: Int64, limit: Int) throws -> [ChunkRef] {
        try Row.fetchAll(
            db,
            sql: """
                SELECT m.group_id, m.file_id, m.length, m.crc FROM moved_chunks m
                WHERE m.moved_ms < ?
                  AND NOT EXISTS (SELECT 1 FROM blob_chunks c WHERE c.group_id = m.group_id AND c.file_id = m.file_id)
                  AND NOT EXISTS (SELECT 1 FROM held_chunks h WHERE h.group_id = m.group_id AND h.file_id = m.file_id)
                ORDER BY m.moved_ms LIMIT ?
                """,
            arguments: [cutoff, limit]
        ).map(chunk)
    }
}

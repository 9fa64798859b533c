import Logging
import PostgresNIO
import SpeedyCore
import SpeedyPostgres

/// Moving chunks between groups (drain, rebalance) and what each group holds, on PostgreSQL.
extension PostgresMetadataStore {
    /// Serializable: a commit, repair or sweep of the blob by another metaserver meanwhile either
    /// comes first (and the move finds its chunk list as that left it) or conflicts, and the move
    /// runs again (docs/gc.md, "Moving chunks").
    public func moveChunk(of digest: Digest, from: ChunkRef, to: ChunkRef) async throws(MetadataError) -> Bool {
        try MetadataChecks.move(from: from, to: to)
        return try await run {
            try await database.transaction { c in
                let (moved, steps) = MetadataPlan.moveChunk(
                    of: digest, from: from, to: to, existing: try await Self.loadBlob(c, digest.description, logger: logger), now: Self.now)
                try await Self.perform(c, steps, logger: logger)
                return moved
            }
        }
    }

    public func groupUsage() async throws(MetadataError) -> [GroupUsage] {
        try await run {
            try await database.read { c in
                try await PostgresBackend.rows(
                    c, "SELECT group_id, COUNT(*)::bigint, SUM(length)::bigint FROM blob_chunks GROUP BY group_id ORDER BY group_id",
                    as: (Int64, Int64, Int64).self, logger: logger
                ).map { GroupUsage(group: UInt32(truncatingIfNeeded: $0.0), chunks: UInt64($0.1), bytes: UInt64($0.2)) }
            }
        }
    }

    /// Moved chunks (`moved_chunks`) of `group` with file ids in `after...upTo`, for
    /// ``chunkReferences(group:after:limit:)``: referenced until swept.
    static func movedReferences(_ c: PostgresConnection, group: UInt32, after: Int64, upTo: UInt64, logger: Logger) async throws -> [ChunkReference] {
        try await PostgresBackend.rows(
            c,
            """
            SELECT file_id, length, crc, owner FROM moved_chunks
            WHERE group_id = \(Int64(group)) AND file_id > \(after) AND file_id <= \(Int64(bitPattern: min(upTo, UInt64(Int64.max))))
            """, as: (Int64, Int64, Int64, String).self, logger: logger
        ).map {
            ChunkReference(
                fileId: UInt64(bitPattern: $0.0), length: UInt32(truncatingIfNeeded: $0.1), crc: UInt32(truncatingIfNeeded: $0.2), owner: "moved:" + $0.3)
        }
    }

    /// Up to `limit` chunks moved before `cutoff` that no blob and no request's hold names.
    static func garbageMovedChunks(_ c: PostgresConnection, cutoff: Int64, limit: Int, logger: Logger) async throws -> [ChunkRef] {
        try await PostgresBackend.rows(
            c,
            """
            SELECT m.group_id, m.file_id, m.length, m.crc FROM moved_chunks m
            WHERE m.moved_ms < \(cutoff)
              AND NOT EXISTS (SELECT 1 FROM blob_chunks b WHERE b.group_id = m.group_id AND b.file_id = m.file_id)
              AND NOT EXISTS (SELECT 1 FROM held_chunks h WHERE h.group_id = m.group_id AND h.file_id = m.file_id)
            ORDER BY m.moved_ms LIMIT \(limit)
            """, as: (Int64, Int64, Int64, Int64).self, logger: logger
        ).map(chunk)
    }
}

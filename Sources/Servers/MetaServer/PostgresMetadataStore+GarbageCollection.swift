import Logging
import PostgresNIO
import SpeedyPostgres
import ServerSupport
import SpeedyCore

/// The metadata sweep and the chunk deletion queue on PostgreSQL (docs/gc.md).
extension PostgresMetadataStore {
    public func sweep(graceMs: Int64, limit: Int, dryRun: Bool) async throws(MetadataError) -> MetadataSweep {
        guard graceMs >= 0 else { throw .invalid("the grace period must not be negative") }
        let limit = min(max(limit, 1), 100_000)
        return try await run {
            // Serializable: a manifest or mount committed by another metaserver meanwhile either
            // comes first (and keeps its target) or conflicts, and the sweep runs again.
            // A sweep is long (up to `limit` deletions): it gets a minute to win its conflicts.
            try await database.transaction(rollback: dryRun, budget: .seconds(60)) { c in
                var result = MetadataSweep(manifests: [], blobs: [])
                let cutoff = currentTimeMillis() - graceMs
                // Deleting an index or a subject can free more manifests: repeat until none.
                while result.count < limit {
                    let batch = try await Self.garbageManifests(c, cutoff: cutoff, limit: limit - result.count, logger: logger)
                    if batch.isEmpty { break }
                    for manifest in batch {
                        try await Self.perform(c, MetadataPlan.removeManifest(manifest.digest.description, in: manifest.repository), logger: logger)
                    }
                    result.manifests += batch
                }
                if result.count < limit {
                    for blob in try await Self.garbageBlobs(c, cutoff: cutoff, limit: limit - result.count, logger: logger) {
                        try await Self.perform(c, MetadataPlan.removeBlob(blob, now: currentTimeMillis()), logger: logger)
                        result.blobs.append(blob)
                    }
                }
                // After the blobs: a moved chunk that a blob swept just now still named is free now too.
                if result.count < limit {
                    result.movedChunks = try await Self.garbageMovedChunks(c, cutoff: cutoff, limit: limit - result.count, logger: logger)
                    try await Self.perform(c, MetadataPlan.retireMovedChunks(result.movedChunks, now: currentTimeMillis()), logger: logger)
                }
                return result
            }
        }
    }

    /// Untagged manifests no index in their repository lists and whose subject (if any) is gone.
    private static func garbageManifests(_ c: PostgresConnection, cutoff: Int64, limit: Int, logger: Logger) async throws -> [SweptManifest] {
        try await PostgresBackend.rows(
            c,
            """
            SELECT m.repository, m.digest, octet_length(m.content)::bigint FROM manifests m
            WHERE m.ref_ms < \(cutoff)
              AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repository = m.repository AND t.digest = m.digest)
              AND NOT EXISTS (SELECT 1 FROM manifest_refs r
                              WHERE r.target = m.digest AND r.kind = \(ManifestReference.Kind.manifest.rawValue) AND r.repository = m.repository)
              AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s WHERE s.repository = m.repository AND s.digest = m.subject))
            ORDER BY m.ref_ms LIMIT \(limit)
            """, as: (String, String, Int64).self, logger: logger
        ).compactMap { row in Digest(parsing: row.1).map { SweptManifest(repository: row.0, digest: $0, size: row.2) } }
    }

    /// Blobs no manifest in any repository refers to.
    private static func garbageBlobs(_ c: PostgresConnection, cutoff: Int64, limit: Int, logger: Logger) async throws -> [BlobRecord] {
        let digests = try await PostgresBackend.column(
            c,
            """
            SELECT b.digest FROM blobs b
            WHERE b.ref_ms < \(cutoff) AND NOT EXISTS (SELECT 1 FROM manifest_refs r WHERE r.target = b.digest AND r.kind = \(ManifestReference.Kind.blob.rawValue))
            ORDER BY b.ref_ms LIMIT \(limit)
            """, as: String.self, logger: logger)
        var blobs: [BlobRecord] = []
        for digest in digests {
            if let blob = try await loadBlob(c, digest, logger: logger) { blobs.append(blob) }
        }
        return blobs
    }

    public func chunkDeletions(limit: Int) async throws(MetadataError) -> [ChunkRef] {
        let limit = min(max(limit, 1), 100_000)
        return try await run {
            try await database.statement { c in
                try await PostgresBackend.rows(
                    c, "SELECT group_id, file_id, length, crc FROM chunk_deletions ORDER BY queued_ms, group_id, file_id LIMIT \(limit)",
                    as: (Int64, Int64, Int64, Int64).self, logger: logger
                ).map(Self.chunk)
            }
        }
    }

    public func forgetChunkDeletions(_ chunks: [ChunkKey]) async throws(MetadataError) {
        guard !chunks.isEmpty else { return }
        try await run {
            try await database.statement { c in
                _ = try await c.query(
                    """
                    DELETE FROM chunk_deletions WHERE (group_id, file_id) IN
                        (SELECT * FROM unnest(\(chunks.map { Int64($0.group) })::bigint[], \(chunks.map { Int64(bitPattern: $0.fileId) })::bigint[]))
                    """, logger: logger)
            }
        }
    }
}

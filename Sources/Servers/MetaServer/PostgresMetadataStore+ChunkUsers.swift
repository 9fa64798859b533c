import Logging
import PostgresNIO
import SpeedyCore
import SpeedyPostgres

/// Who uses a chunk: what the master reports with a lost chunk. The same queries as SQLite's.
extension PostgresMetadataStore {
    public func chunkUsers(group: UInt32, fileId: UInt64) async throws(MetadataError) -> ChunkUsers {
        let file = try ChunkUsersQuery.storedFileId(fileId)
        return try await run {
            // One snapshot: a blob committed between the queries cannot show without its links.
            try await database.read { c in
                let digests = try await PostgresBackend.column(
                    c,
                    """
                    SELECT DISTINCT digest FROM blob_chunks WHERE group_id = \(Int64(group)) AND file_id = \(file)
                    ORDER BY digest LIMIT \(ChunkUsersQuery.blobRows)
                    """, as: String.self, logger: logger)
                return ChunkUsersQuery.answer(
                    digests: digests, links: try await Self.links(c, of: digests, logger: logger),
                    heldByUpload: try await Self.isHeldByUpload(c, group: group, fileId: fileId, logger: logger))
            }
        }
    }

    /// The first ``ChunkUsersQuery/repositoryRows`` repositories linking each of `digests`, in
    /// one query (a window per digest) rather than one per blob.
    private static func links(_ c: PostgresConnection, of digests: [String], logger: Logger) async throws -> [(digest: String, repository: String)] {
        guard !digests.isEmpty else { return [] }
        return try await PostgresBackend.rows(
            c,
            """
            SELECT digest, repository FROM (
                SELECT digest, repository, row_number() OVER (PARTITION BY digest ORDER BY repository) AS n
                FROM repository_blobs WHERE digest = ANY(\(digests))) AS linked
            WHERE n <= \(ChunkUsersQuery.repositoryRows) ORDER BY digest, repository
            """, as: (String, String).self, logger: logger
        ).map { (digest: $0.0, repository: $0.1) }
    }

    /// Whether a request streaming into a session holds the chunk, or a session has it appended
    /// (sessions are few and keep their chunks as JSON, so they are read whole, as fsck does).
    private static func isHeldByUpload(_ c: PostgresConnection, group: UInt32, fileId: UInt64, logger: Logger) async throws -> Bool {
        let held = try await PostgresBackend.count(
            c, "SELECT 1 FROM held_chunks WHERE group_id = \(Int64(group)) AND file_id = \(Int64(fileId)) LIMIT 1", logger: logger)
        if held > 0 { return true }
        for column in try await PostgresBackend.column(c, "SELECT chunks FROM uploads", as: String.self, logger: logger) {
            if try UploadChunksColumn.decode(column).contains(where: { $0.group == group && $0.fileId == fileId }) { return true }
        }
        return false
    }
}

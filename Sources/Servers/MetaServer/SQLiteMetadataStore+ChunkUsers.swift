import GRDB
import SpeedyCore

/// Who uses a chunk: what the master reports with a lost chunk.
extension SQLiteMetadataStore {
    public func chunkUsers(group: UInt32, fileId: UInt64) async throws(MetadataError) -> ChunkUsers {
        let file = try ChunkUsersQuery.storedFileId(fileId)
        return try await run {
            try await pool.read { db in
                let digests = try String.fetchAll(
                    db,
                    sql: "SELECT DISTINCT digest FROM blob_chunks WHERE group_id = ? AND file_id = ? ORDER BY digest LIMIT ?",
                    arguments: [Int64(group), file, ChunkUsersQuery.blobRows])
                return ChunkUsersQuery.answer(
                    digests: digests, links: try Self.links(db, of: digests),
                    heldByUpload: try Self.isHeldByUpload(db, group: group, fileId: fileId))
            }
        }
    }

    /// The first ``ChunkUsersQuery/repositoryRows`` repositories linking each of `digests`, in
    /// one query (a window per digest) rather than one per blob.
    private static func links(_ db: Database, of digests: [String]) throws -> [(digest: String, repository: String)] {
        guard !digests.isEmpty else { return [] }
        let marks = Array(repeating: "?", count: digests.count).joined(separator: ", ")
        var arguments = StatementArguments(digests)
        arguments += [ChunkUsersQuery.repositoryRows]
        return try Row.fetchAll(
            db,
            sql: """
                SELECT digest, repository FROM (
                    SELECT digest, repository, row_number() OVER (PARTITION BY digest ORDER BY repository) AS n
                    FROM repository_blobs WHERE digest IN (\(marks)))
                WHERE n <= ? ORDER BY digest, repository
                """,
            arguments: arguments
        ).map { (digest: $0["digest"], repository: $0["repository"]) }
    }

    /// Whether a request streaming into a session holds the chunk, or a session has it appended
    /// (sessions are few and keep their chunks as JSON, so they are read whole, as fsck does).
    private static func isHeldByUpload(_ db: Database, group: UInt32, fileId: UInt64) throws -> Bool {
        let held = try Bool.fetchOne(
            db, sql: "SELECT 1 FROM held_chunks WHERE group_id = ? AND file_id = ? LIMIT 1", arguments: [Int64(group), Int64(fileId)])
        if held ?? false { return true }
        for column in try String.fetchAll(db, sql: "SELECT chunks FROM uploads") {
            if try UploadChunksColumn.decode(column).contains(where: { $0.group == group && $0.fileId == fileId }) { return true }
        }
        return false
    }
}

import Foundation
import Logging
import NIOCore
import PostgresNIO
import SpeedyPostgres
import ServerSupport
import SpeedyCore

/// Upload sessions, held chunks and chunk references on PostgreSQL.
extension PostgresMetadataStore {
    public func createUpload(repository: String, client: String, limits: UploadLimits) async throws(MetadataError) -> UploadSession {
        let session = try UploadSession.starting(in: repository, limits: limits)
        try await run {
            try await database.transaction { c in
                // Counted in the insert's serializable transaction: two metaservers racing for the
                // last slot conflict, and the one run again sees the other's session.
                try await Self.checkCap(c, column: "repository", value: repository, cap: limits.perRepository, what: "repository \(repository)", logger: logger)
                try await Self.checkCap(c, column: "client", value: client, cap: limits.perClient, what: "client \(client)", logger: logger)
                try await c.query(
                    """
                    INSERT INTO uploads (id, repository, client, "offset", chunks, hash_state, created_ms, updated_ms)
                    VALUES (\(session.id), \(repository), \(client), 0, '[]', \(ByteBuffer(bytes: session.hashState)), \(session.createdMs), \(session.createdMs))
                    """, logger: logger)
            }
        }
        return session
    }

    /// Throws `.tooManyUploads` when the sessions whose `column` is `value` already number `cap`.
    private static func checkCap(_ c: PostgresConnection, column: String, value: String, cap: Int, what: String, logger: Logger) async throws {
        guard cap < Int.max else { return }  // unlimited: skip the count
        let query: PostgresQuery =
            column == "client"
            ? "SELECT count(*) FROM uploads WHERE client = \(value)" : "SELECT count(*) FROM uploads WHERE repository = \(value)"
        let open = try await PostgresBackend.column(c, query, as: Int64.self, logger: logger).first ?? 0
        if open >= cap { throw MetadataError.tooManyUploads("\(what) has \(open) open uploads (the limit is \(cap))") }
    }

    static func loadUpload(_ c: PostgresConnection, _ id: String, logger: Logger) async throws -> UploadSession? {
        guard
            let row = try await PostgresBackend.rows(
                c, "SELECT repository, \"offset\", chunks, hash_state, created_ms FROM uploads WHERE id = \(id)",
                as: (String, Int64, String, ByteBuffer, Int64).self, logger: logger
            ).first
        else { return nil }
        let chunks = try UploadChunksColumn.decode(row.2)
        return UploadSession(id: id, repository: row.0, offset: UInt64(bitPattern: row.1), chunks: chunks, hashState: bytes(row.3), createdMs: row.4)
    }

    public func upload(_ id: String) async throws(MetadataError) -> UploadSession? {
        try await run { try await database.statement { c in try await Self.loadUpload(c, id, logger: logger) } }
    }

    public func appendUpload(_ id: String, expectedOffset: UInt64, chunks: [ChunkRef], newOffset: UInt64, hashState: [UInt8])
        async throws(MetadataError) -> UploadSession
    {
        try MetadataChecks.append(expected: expectedOffset, chunks: chunks, newOffset: newOffset)
        return try await run {
            try await database.transaction { c in
                let (session, steps) = try MetadataPlan.appendUpload(
                    try await Self.loadUpload(c, id, logger: logger), id: id, expectedOffset: expectedOffset, chunks: chunks, newOffset: newOffset,
                    hashState: hashState, now: Self.now)
                try await Self.perform(c, steps, logger: logger)
                return session
            }
        }
    }

    public func deleteUpload(_ id: String) async throws(MetadataError) {
        try await run {
            try await database.transaction { c in try await Self.perform(c, MetadataPlan.endUpload(id), logger: logger) }
        }
    }

    public func uploadSessionCount() async throws(MetadataError) -> Int {
        try await run {
            Int(try await database.statement { c in try await PostgresBackend.column(c, "SELECT count(*) FROM uploads", as: Int64.self, logger: logger).first ?? 0 })
        }
    }

    public func expireUploads(idleSinceMs cutoff: Int64, limit: Int) async throws(MetadataError) -> [UploadSession] {
        guard limit > 0 else { return [] }
        return try await run {
            // Reading and deleting in one serializable transaction hands each session to one caller only.
            try await database.transaction { c in
                let ids = try await PostgresBackend.column(
                    c, "SELECT id FROM uploads WHERE updated_ms < \(cutoff) ORDER BY updated_ms, id LIMIT \(limit)", as: String.self, logger: logger)
                var sessions: [UploadSession] = []
                for id in ids {
                    guard var session = try await Self.loadUpload(c, id, logger: logger) else { continue }
                    // Chunks held by a request that never appended them are the caller's to delete too.
                    session.chunks += try await Self.heldChunks(c, upload: id, logger: logger)
                    try await Self.perform(c, MetadataPlan.endUpload(id), logger: logger)
                    sessions.append(session)
                }
                return sessions
            }
        }
    }

    public func holdChunks(_ chunks: [ChunkRef], upload id: String) async throws(MetadataError) {
        try MetadataChecks.chunks(chunks)
        try await run {
            try await database.transaction { c in try await Self.perform(c, MetadataPlan.holdChunks(chunks, upload: id, now: Self.now), logger: logger) }
        }
    }

    public func completeUpload(_ id: String, blob: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try MetadataChecks.blob(blob)
        return try await writeBlob(blob.digest) { existing, now in
            MetadataPlan.completeUpload(id, blob: blob, existing: existing, repository: repository, now: now)
        }
    }

    /// The chunks requests streaming into upload `id` hold.
    static func heldChunks(_ c: PostgresConnection, upload id: String, logger: Logger) async throws -> [ChunkRef] {
        try await PostgresBackend.rows(c, "SELECT group_id, file_id, length, crc FROM held_chunks WHERE upload_id = \(id)", as: (Int64, Int64, Int64, Int64).self, logger: logger)
            .map(chunk)
    }

    private static func openUploads(_ c: PostgresConnection, logger: Logger) async throws -> [(id: String, chunks: [ChunkRef])] {
        try await PostgresBackend.rows(c, "SELECT id, chunks FROM uploads", as: (String, String).self, logger: logger).map { row in
            (row.0, try UploadChunksColumn.decode(row.1))
        }
    }

    // MARK: Chunk references

    public func referencedGroups() async throws(MetadataError) -> [UInt32] {
        try await run {
            try await database.read { c in
                var groups = Set(
                    try await PostgresBackend.column(
                        c,
                        "SELECT DISTINCT group_id FROM blob_chunks UNION SELECT DISTINCT group_id FROM held_chunks UNION SELECT DISTINCT group_id FROM moved_chunks",
                        as: Int64.self, logger: logger
                    ).map { UInt32(truncatingIfNeeded: $0) })
                for upload in try await Self.openUploads(c, logger: logger) { groups.formUnion(upload.chunks.map(\.group)) }
                return groups.sorted()
            }
        }
    }

    public func chunkReferences(group: UInt32, after: UInt64, limit: Int) async throws(MetadataError) -> ChunkReferencePage {
        let limit = max(1, limit)
        let after = Int64(clamping: after)
        return try await run {
            try await database.read { c in
                var references = try await PostgresBackend.rows(
                    c,
                    """
                    SELECT file_id, length, crc, digest FROM blob_chunks WHERE group_id = \(Int64(group)) AND file_id > \(after)
                    ORDER BY file_id LIMIT \(limit)
                    """, as: (Int64, Int64, Int64, String).self, logger: logger
                ).map {
                    ChunkReference(fileId: UInt64(bitPattern: $0.0), length: UInt32(truncatingIfNeeded: $0.1), crc: UInt32(truncatingIfNeeded: $0.2), owner: $0.3)
                }
                let full = references.count == limit
                let upTo = full ? references.last!.fileId : UInt64(Int64.max)
                // Uploads in progress are few; their chunks are referenced too, or fsck would call them garbage.
                for upload in try await Self.openUploads(c, logger: logger) {
                    for chunk in upload.chunks where chunk.group == group && chunk.fileId > UInt64(after) && chunk.fileId <= upTo {
                        references.append(ChunkReference(fileId: chunk.fileId, length: chunk.length, crc: chunk.crc, owner: "upload:" + upload.id))
                    }
                }
                for row in try await PostgresBackend.rows(
                    c,
                    """
                    SELECT upload_id, file_id, length, crc FROM held_chunks
                    WHERE group_id = \(Int64(group)) AND file_id > \(after) AND file_id <= \(Int64(bitPattern: upTo))
                    """, as: (String, Int64, Int64, Int64).self, logger: logger)
                {
                    references.append(
                        ChunkReference(
                            fileId: UInt64(bitPattern: row.1), length: UInt32(truncatingIfNeeded: row.2), crc: UInt32(truncatingIfNeeded: row.3),
                            owner: "held:" + row.0))
                }
                references += try await Self.movedReferences(c, group: group, after: after, upTo: upTo, logger: logger)
                references.sort { $0.fileId < $1.fileId }
                return ChunkReferencePage(references: references, nextAfter: full ? upTo : nil)
            }
        }
    }
}

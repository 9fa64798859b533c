import SpeedyCore

/// What both stores share in answering ``SpeedyCore/MetadataStore/chunkUsers(group:fileId:)``:
/// the bounds, the check on the file id, and turning their rows into the answer, so SQLite and
/// PostgreSQL cut the lists at the same places.
enum ChunkUsersQuery {
    /// Blob rows to ask for: one more than listed, to know whether more exist.
    static let blobRows = ChunkUsers.maxBlobs + 1
    /// Repository rows to ask for per blob, likewise.
    static let repositoryRows = ChunkUsers.maxRepositories + 1

    /// The file id as the databases keep it.
    /// - Throws: `.invalid` above `Int64.max`, which no stored chunk can have.
    static func storedFileId(_ fileId: UInt64) throws(MetadataError) -> Int64 {
        guard let stored = Int64(exactly: fileId) else { throw .invalid("file id \(fileId) is above \(Int64.max)") }
        return stored
    }

    /// The answer from up to ``blobRows`` digests in ascending order and up to ``repositoryRows``
    /// links per digest in ascending repository order; a digest that does not parse is skipped.
    static func answer(digests: [String], links: [(digest: String, repository: String)], heldByUpload: Bool) -> ChunkUsers {
        var repositories: [String: [String]] = [:]
        for link in links { repositories[link.digest, default: []].append(link.repository) }
        let blobs = digests.prefix(ChunkUsers.maxBlobs).compactMap { text -> ChunkUsers.Blob? in
            guard let digest = Digest(parsing: text) else { return nil }
            let linked = repositories[text] ?? []
            return ChunkUsers.Blob(
                digest: digest, repositories: Array(linked.prefix(ChunkUsers.maxRepositories)),
                repositoriesTruncated: linked.count > ChunkUsers.maxRepositories)
        }
        return ChunkUsers(blobs: blobs, truncated: digests.count > ChunkUsers.maxBlobs, heldByUpload: heldByUpload)
    }
}

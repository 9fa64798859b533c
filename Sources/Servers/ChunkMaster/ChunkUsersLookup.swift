import NIOCore
import SpeedyClients
import SpeedyCore

/// Asks the metaservers that heartbeat to the master which blobs and repositories use a chunk,
/// for the report of a lost one.
struct ChunkUsersLookup {
    let master: ChunkMaster
    let transport: ClusterTransport

    /// `repository@digest` of each blob that uses `key` (a blob no repository links shows as
    /// `(unlinked)@digest`, one an upload holds adds `an upload in progress`); nil when no
    /// metaserver answered.
    func users(of key: ChunkKey) async -> [String]? {
        let metaservers = (master.snapshot().metaservers ?? []).filter { $0.status == .up }.map(\.addr)
        guard !metaservers.isEmpty else { return nil }
        // One client over every metaserver: it asks the next when one does not answer.
        let client = MetaClient(baseURL: metaservers.joined(separator: ","), timeout: .seconds(5), transport: transport)
        guard let users = try? await client.chunkUsers(group: key.group, fileId: key.fileId) else { return nil }
        var named = users.blobs.flatMap { blob in
            blob.repositories.isEmpty ? ["(unlinked)@\(blob.digest)"] : blob.repositories.map { "\($0)@\(blob.digest)" }
        }
        if users.truncated || users.blobs.contains(where: \.repositoriesTruncated) { named.append("and more") }
        if users.heldByUpload { named.append("an upload in progress") }
        return named
    }
}

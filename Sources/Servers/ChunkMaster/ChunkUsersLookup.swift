import SpeedyClients
import SpeedyCore

/// Asks a metaserver which blobs and repositories use a chunk, for the report of a lost one.
struct ChunkUsersLookup {
    let master: ChunkMaster
    let transport: ClusterTransport

    /// `repository@digest` of each blob that uses `key`; nil when no metaserver answered.
    /// (Until the metaserver answers this question, nil: the next commit asks it.)
    func users(of key: ChunkKey) async -> [String]? {
        nil
    }
}

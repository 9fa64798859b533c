import HTTPTypes
import SpeedyCore

// Which role calls which internal route, role by role: each rule names the callers the code has
// (the clients in SpeedyClients and the roles' own calls), and nothing more. The operator (tools,
// the console) may call every route and is not listed; a route no rule names is the operator's
// alone. A literal segment comes before a `{name}` one where both would match.

extension RouteAuthorization {
    /// The chunkmaster's port.
    public static let chunkmaster = RouteAuthorization(
        server: "chunkmaster",
        rules: [
            Rule([.post], "/v1/heartbeat", [.chunkserver]),
            Rule([.get], "/v1/cluster", [.imageserver, .metaserver]),
            Rule([.post], "/v1/fileids", [.imageserver]),
            Rule([.post], "/v1/roles/heartbeat", [.imageserver, .metaserver, .tracker]),
            // A chunkserver's damage and compaction reports; a metaserver's scheduled collection and sync.
            Rule([.post], "/v1/events", [.chunkserver, .metaserver]),
            // A metaserver's scheduled sync jobs, shown in the console as they run.
            Rule([.post], "/v1/jobs", [.metaserver]),
            Rule([.get], "/metrics", [.monitor]),
        ])

    /// The metaserver's port: the registry's records are the imageserver's to change.
    public static let metaserver = RouteAuthorization(
        server: "metaserver",
        rules: [
            Rule([.post], "/v1/blobs/repair", [.imageserver]),
            Rule([.get], "/v1/blobs", []),
            Rule([.post], "/v1/blobs", [.imageserver]),
            Rule([.post], "/v1/blobs/{digest}/mount", [.imageserver]),
            Rule([.get, .delete], "/v1/blobs/{digest}", [.imageserver]),
            Rule([.post], "/v1/uploads", [.imageserver]),
            Rule([.post], "/v1/uploads/expire", [.imageserver]),
            Rule([.get, .delete], "/v1/uploads/{id}", [.imageserver]),
            Rule([.post], "/v1/uploads/{id}/append", [.imageserver]),
            Rule([.post], "/v1/uploads/{id}/hold", [.imageserver]),
            Rule([.post], "/v1/uploads/{id}/complete", [.imageserver]),
            Rule([.get, .put, .delete], "/v1/manifests", [.imageserver]),
            Rule([.get, .delete], "/v1/tags", [.imageserver]),
            // The pulls each imageserver saw, batched; retention's reads and deletes are the operator's.
            Rule([.post], "/v1/tags/pulls", [.imageserver]),
            Rule([.get], "/v1/tags/details", []),
            Rule([.post], "/v1/tags/delete-if-unchanged", []),
            Rule([.post], "/v1/retention", []),
            Rule([.get], "/v1/repositories/exists", [.imageserver]),
            Rule([.get], "/v1/repositories", [.imageserver]),
            Rule([.get], "/v1/referrers/{digest}", [.imageserver]),
            // The repairer's report of a lost chunk names the blobs that used it.
            Rule([.get], "/v1/chunks/{group}/{fileId}/users", [.chunkmaster]),
            Rule([.get], "/metrics", [.monitor]),
        ])

    /// A chunkserver's port. Chunk reads by agents carry tickets, checked apart from this table.
    public static let chunkserver = RouteAuthorization(
        server: "chunkserver",
        rules: [
            // Replica comparison by the master's repairer.
            Rule([.get], "/v1/chunks/{group}/digests", [.chunkmaster]),
            // The imageserver writes a chain's head; each member the next; the master repairs and fills spares.
            Rule([.put], "/v1/chunks/{group}/{fileId}", [.imageserver, .chunkserver, .chunkmaster]),
            Rule([.get, .head], "/v1/chunks/{group}/{fileId}", [.imageserver, .chunkmaster]),
            // Failed writes and expired uploads (imageserver), scheduled collection (metaserver), repairs.
            Rule([.delete], "/v1/chunks/{group}/{fileId}", [.imageserver, .metaserver, .chunkmaster]),
            Rule([.get], "/v1/chunks/{group}", [.chunkmaster, .metaserver]),
            Rule([.get], "/v1/stats", [.chunkmaster]),
            Rule([.post], "/v1/compact", [.metaserver]),
            Rule([.get], "/metrics", [.monitor]),
        ])

    /// The imageserver's port: everything but `/metrics` is the public registry API, which its
    /// own logins guard.
    public static let imageserver = RouteAuthorization(server: "imageserver", rules: [Rule([.get], "/metrics", [.monitor])])

    /// The tracker's port: the swarm's routes are signed with the peer secret, not checked here.
    public static let tracker = RouteAuthorization(server: "tracker", rules: [Rule([.get], "/metrics", [.monitor])])

    /// Every table, for the docs and the tests.
    public static let all: [RouteAuthorization] = [.chunkmaster, .metaserver, .chunkserver, .imageserver, .tracker]

    /// The table of the ports of kind `port`.
    public static func of(_ port: ClusterRole) -> RouteAuthorization? {
        all.first { $0.server == port.rawValue }
    }

    /// Whether any rule lets `role` in (the operator: always).
    public func admitsAnything(_ role: ClusterRole) -> Bool {
        role == .operator || rules.contains { $0.roles.contains(role) }
    }
}

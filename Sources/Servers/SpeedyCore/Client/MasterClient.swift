import AsyncHTTPClient
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Calls the chunkmaster's HTTP API (documented in docs/api.md).
public struct MasterClient: Sendable {
    /// The underlying JSON client.
    public let service: ServiceClient

    /// Creates a client for the master at `baseURL`.
    public init(baseURL: String, http: HTTPClient = ClusterTransport.http, timeout: TimeAmount = .seconds(5), secret: ClusterSecret? = ClusterTransport.secret) {
        self.service = ServiceClient(baseURL: baseURL, http: http, timeout: timeout, secret: secret)
    }

    /// Whether the master answers its health check.
    public func isHealthy() async -> Bool {
        guard let reply = try? await service.send(.GET, "/v1/health") else { return false }
        return reply.status == 200
    }

    /// Sends one heartbeat.
    public func heartbeat(_ report: HeartbeatReport) async throws(ServiceError) -> HeartbeatReply {
        try await service.json(.POST, "/v1/heartbeat", as: HeartbeatReply.self, body: report)
    }

    /// Sends one imageserver or metaserver heartbeat.
    public func roleHeartbeat(_ report: RoleReport) async throws(ServiceError) -> RoleHeartbeatReply {
        try await service.json(.POST, "/v1/roles/heartbeat", as: RoleHeartbeatReply.self, body: report)
    }

    /// Fetches the cluster snapshot; `historySeconds` > 0 adds per-member throughput history and
    /// `events` > 0 the most recent events.
    public func snapshot(historySeconds: Int = 0, events: Int = 0) async throws(ServiceError) -> ClusterSnapshot {
        var query: [(String, String?)] = []
        if historySeconds > 0 { query.append(("history", String(historySeconds))) }
        if events > 0 { query.append(("events", String(events))) }
        return try await service.json(.GET, "/v1/cluster" + QueryString.make(query), as: ClusterSnapshot.self)
    }

    /// Leases `count` file ids.
    public func leaseFileIds(count: UInt64) async throws(ServiceError) -> FileIdLease {
        try await service.json(.POST, "/v1/fileids?count=\(count)", as: FileIdLease.self)
    }

    /// Events with an id greater than `after`, oldest first.
    public func events(after: Int64 = 0, limit: Int = 100) async throws(ServiceError) -> [ClusterEvent] {
        try await service.json(.GET, "/v1/events?after=\(after)&limit=\(limit)", as: EventPage.self).events
    }

    /// Reports an operator job's progress.
    public func reportJob(_ report: JobReport) async throws(ServiceError) {
        _ = try await service.json(.POST, "/v1/jobs", as: Empty.self, body: report)
    }

    /// Appends an event to the master's log.
    public func recordEvent(_ report: EventReport) async throws(ServiceError) {
        _ = try await service.json(.POST, "/v1/events", as: Empty.self, body: report)
    }

    // MARK: Administration

    /// Creates an empty group; returns it.
    public func addGroup(_ id: UInt32) async throws(ServiceError) -> GroupSnapshot {
        try await service.json(.POST, "/v1/groups", as: GroupSnapshot.self, body: GroupCreation(id: id))
    }

    /// Removes an empty group.
    public func removeGroup(_ id: UInt32) async throws(ServiceError) {
        _ = try await service.json(.DELETE, "/v1/groups/\(id)", as: Empty.self)
    }

    /// Registers a chunkserver; returns its group.
    public func addServer(_ registration: ServerRegistration) async throws(ServiceError) -> GroupSnapshot {
        try await service.json(.POST, "/v1/servers", as: GroupSnapshot.self, body: registration)
    }

    /// Sets an operator's status for a server (`RW` clears it); returns its group.
    public func setStatus(of id: String, to status: ServerStatus) async throws(ServiceError) -> GroupSnapshot {
        try await service.json(.POST, "/v1/servers/\(QueryString.escape(id))/status", as: GroupSnapshot.self, body: StatusSetting(status: status))
    }

    /// Removes a `DOWN` or `OFFLINE` server from the cluster for good; returns its former group.
    public func removeServer(_ id: String) async throws(ServiceError) -> GroupSnapshot {
        try await service.json(.DELETE, "/v1/servers/\(QueryString.escape(id))", as: GroupSnapshot.self)
    }
}

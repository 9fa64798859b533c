import AsyncHTTPClient
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyCore
import Synchronization

/// Calls the chunkmaster's HTTP API (documented in docs/api.md). Given several masters
/// (`URL,URL`: masters sharing one database, one leading), a call goes to the one that answered
/// last and moves on to the next when that one cannot be reached or is a standby (503
/// `NOT_LEADER`), so clients follow the leader wherever it moves.
public struct MasterClient: Sendable {
    /// One client per master named, in the order given.
    public let services: [ServiceClient]
    private let preferred: PreferredMaster

    /// Creates a client for the master at `baseURL`, or the masters at `URL,URL,…`.
    public init(baseURL: String, timeout: TimeAmount = .seconds(5), transport: ClusterTransport, http: HTTPClient? = nil) {
        let urls = MasterLocation.split(baseURL, scheme: transport.scheme)
        services = (urls.isEmpty ? [baseURL] : urls).map { ServiceClient(baseURL: $0, timeout: timeout, transport: transport, http: http, audience: .chunkmaster) }
        preferred = PreferredMaster()
    }

    /// How the masters are called (the secret, the CA): what clients made from this one's answers use.
    public var transport: ClusterTransport { services[0].transport }

    /// The master calls go to first: the one that answered last.
    public var baseURL: String { services[preferred.index % services.count].baseURL }

    /// Runs `call` against the masters, starting with the one that answered last, until one
    /// answers as a leader; other failures (a 4xx, say) end it at once. A master that cannot be
    /// reached is asked last from then on, so a dead host costs one timeout, not one per call.
    ///
    /// A call whose master went away after taking it may be sent again to the next one. That is
    /// harmless for heartbeats, reports, reads and leases (a lease twice wastes ids, no more); an
    /// administrative change made twice answers the second time as if it had failed (the group
    /// exists, the server is gone), and `chunktool status` shows what was made.
    private func call<Response>(_ call: (ServiceClient) async throws(ServiceError) -> Response) async throws(ServiceError) -> Response {
        let first = preferred.index % services.count
        var lastError = ServiceError.unreachable(url: services[0].baseURL, reason: "no master was asked")
        for step in 0..<services.count {
            let index = (first + step) % services.count
            do {
                let response = try await call(services[index])
                if index != first { preferred.index = index }
                return response
            } catch {
                guard services.count > 1, Self.shouldTryAnother(error) else { throw error }
                if case .unreachable = error, index == preferred.index % services.count { preferred.index = (index + 1) % services.count }
                lastError = error
            }
        }
        throw lastError
    }

    /// Sends a JSON call to the leader (see ``call(_:)``) and decodes its answer.
    private func json<Response: Decodable & Sendable>(
        _ method: HTTPMethod, _ path: String, as type: Response.Type, body: (some Encodable & Sendable)? = Optional<Int>.none
    ) async throws(ServiceError) -> Response {
        try await call { service throws(ServiceError) in try await service.json(method, path, as: type, body: body) }
    }

    /// Whether another master may answer where this one failed: it is unreachable, or a standby.
    public static func shouldTryAnother(_ error: ServiceError) -> Bool {
        switch error {
        case .unreachable: true
        case .status(_, let code, let body): code == 503 && body?.internalCode == .notLeader
        case .badResponse: false
        }
    }

    /// Whether the master answers its health check.
    public func isHealthy() async -> Bool {
        guard let reply = try? await call({ service throws(ServiceError) in try await service.send(.GET, "/v1/health") }) else { return false }
        return reply.status == 200
    }

    /// Sends one heartbeat.
    public func heartbeat(_ report: HeartbeatReport) async throws(ServiceError) -> HeartbeatReply {
        try await json(.POST, "/v1/heartbeat", as: HeartbeatReply.self, body: report)
    }

    /// Sends one imageserver or metaserver heartbeat.
    public func roleHeartbeat(_ report: RoleReport) async throws(ServiceError) -> RoleHeartbeatReply {
        try await json(.POST, "/v1/roles/heartbeat", as: RoleHeartbeatReply.self, body: report)
    }

    /// Fetches the cluster snapshot; `historySeconds` > 0 adds per-member throughput history and
    /// `events` > 0 the most recent events.
    public func snapshot(historySeconds: Int = 0, events: Int = 0) async throws(ServiceError) -> ClusterSnapshot {
        var query: [(String, String?)] = []
        if historySeconds > 0 { query.append(("history", String(historySeconds))) }
        if events > 0 { query.append(("events", String(events))) }
        return try await json(.GET, "/v1/cluster" + QueryString.make(query), as: ClusterSnapshot.self)
    }

    /// Leases `count` file ids.
    public func leaseFileIds(count: UInt64) async throws(ServiceError) -> FileIdLease {
        try await json(.POST, "/v1/fileids?count=\(count)", as: FileIdLease.self)
    }

    /// Events with an id greater than `after`, oldest first.
    public func events(after: Int64 = 0, limit: Int = 100) async throws(ServiceError) -> [ClusterEvent] {
        try await json(.GET, "/v1/events?after=\(after)&limit=\(limit)", as: EventPage.self).events
    }

    /// Reports an operator job's progress.
    public func reportJob(_ report: JobReport) async throws(ServiceError) {
        _ = try await json(.POST, "/v1/jobs", as: Empty.self, body: report)
    }

    /// Appends an event to the master's log.
    public func recordEvent(_ report: EventReport) async throws(ServiceError) {
        _ = try await json(.POST, "/v1/events", as: Empty.self, body: report)
    }

    // MARK: Administration

    /// Creates an empty group; returns it.
    public func addGroup(_ id: UInt32) async throws(ServiceError) -> GroupSnapshot {
        try await json(.POST, "/v1/groups", as: GroupSnapshot.self, body: GroupCreation(id: id))
    }

    /// Removes an empty group, or a drained one whose members hold no chunk (they are retired).
    public func removeGroup(_ id: UInt32) async throws(ServiceError) {
        _ = try await json(.DELETE, "/v1/groups/\(id)", as: Empty.self)
    }

    /// Drains a group (imageservers place no new chunks in it), or with `false` lets it take
    /// chunks again; returns it. Setting what is set already changes nothing.
    public func setDraining(_ id: UInt32, _ draining: Bool) async throws(ServiceError) -> GroupSnapshot {
        try await json(draining ? .POST : .DELETE, "/v1/groups/\(id)/drain", as: GroupSnapshot.self)
    }

    /// Registers a chunkserver; returns its group.
    public func addServer(_ registration: ServerRegistration) async throws(ServiceError) -> GroupSnapshot {
        try await json(.POST, "/v1/servers", as: GroupSnapshot.self, body: registration)
    }

    /// Sets an operator's status for a server (`RW` clears it); returns its group.
    public func setStatus(of id: String, to status: ServerStatus) async throws(ServiceError) -> GroupSnapshot {
        try await json(.POST, "/v1/servers/\(QueryString.escape(id))/status", as: GroupSnapshot.self, body: StatusSetting(status: status))
    }

    /// Removes a `DOWN` or `OFFLINE` server from the cluster for good; returns its former group.
    public func removeServer(_ id: String) async throws(ServiceError) -> GroupSnapshot {
        try await json(.DELETE, "/v1/servers/\(QueryString.escape(id))", as: GroupSnapshot.self)
    }
}

/// Which of several masters a ``MasterClient`` (and its copies) asks first.
private final class PreferredMaster: Sendable {
    private let value = Atomic<Int>(0)
    var index: Int {
        get { value.load(ordering: .relaxed) }
        set { value.store(newValue, ordering: .relaxed) }
    }
}

import Foundation
import CoreMetrics
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore
import Synchronization

/// Everything `speedy chunkmaster` needs to run.
public struct ChunkMasterConfiguration: Sendable {
    /// Where the HTTP API listens.
    public var listen: HostPort
    /// Directory for `master.sqlite`.
    public var dataDirectory: String
    /// A server silent this long is marked down.
    public var downAfter: Duration
    /// The heartbeat interval chunkservers are told to keep.
    public var heartbeatInterval: Duration
    /// The cluster secret and TLS.
    public var security: RoleSecurity
    /// The address clients reach the master at, shown in the cluster snapshot (default: `listen`).
    public var advertise: HostPort?

    /// Creates a configuration.
    public init(
        listen: HostPort, dataDirectory: String, downAfter: Duration = .seconds(3), heartbeatInterval: Duration = .seconds(1),
        security: RoleSecurity, advertise: HostPort? = nil
    ) {
        self.listen = listen
        self.advertise = advertise
        self.dataDirectory = dataDirectory
        self.downAfter = downAfter
        self.heartbeatInterval = heartbeatInterval
        self.security = security
    }
}

/// The chunkmaster role: the cluster map from heartbeats, group health, file id leases and the
/// event log, over HTTP (docs/api.md).
public final class ChunkMaster: Sendable {
    let configuration: ChunkMasterConfiguration
    let database: MasterDatabase
    let allocator: FileIdAllocator
    let map: Mutex<ClusterMap>
    let frontRoles = Mutex(FrontRoleMap())
    let jobs = Mutex(JobBoard())
    let metrics = MasterMetrics()
    let advertised: Mutex<HostPort>
    let logger: Logger
    let clock = ContinuousClock()
    let epoch: ContinuousClock.Instant

    /// Opens the database and restores the servers it remembers (as down until they report).
    public init(configuration: ChunkMasterConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        database = try MasterDatabase(path: configuration.dataDirectory + "/master.sqlite")
        allocator = try FileIdAllocator(database: database)
        var map = ClusterMap()
        for group in try database.groups() { map.restore(group: group) }
        for server in try database.servers() {
            map.restore(
                id: server.id, group: server.group, addr: server.addr, setStatus: server.setStatus, fencedBy: server.fencedBy,
                retired: server.retired)
        }
        self.map = Mutex(map)
        advertised = Mutex(configuration.advertise ?? configuration.listen)
        epoch = clock.now
    }

    private var nowMs: Int64 {
        (clock.now - epoch).milliseconds
    }

    /// Takes a heartbeat and records what it changed.
    /// - Throws: `.serverRetired` for a server removed from the cluster.
    public func heartbeat(_ report: HeartbeatReport) async throws(ClusterMap.AdminError) -> HeartbeatReply {
        let now = nowMs
        let (changes, state) = try map.withLock { map throws(ClusterMap.AdminError) in
            guard !map.isRetired(report.serverId) else { throw .serverRetired(report.serverId) }
            let changes = map.apply(report, nowMs: now)
            saveInOrder(changes)
            return (changes, map.state(of: report.group))
        }
        await record(changes)
        return HeartbeatReply(groupState: state, intervalMs: UInt64(configuration.heartbeatInterval.milliseconds))
    }

    /// Why an administrative change did not happen.
    public enum AdministrationError: Error, Sendable {
        /// The map refused it.
        case refused(ClusterMap.AdminError)
        /// It could not be saved, so it was not made: an operator's change must survive a restart.
        case notSaved(String)
    }

    /// Applies an administrative change: made on a copy of the map, saved in one transaction,
    /// then installed, all under the map's lock, so no heartbeat can come between the change
    /// saved and the change made (an operator's change is rare; the lock is held for one SQLite
    /// transaction). Returns the affected group.
    public func administer(
        group: UInt32, by actor: String? = nil, _ change: (inout ClusterMap) throws(ClusterMap.AdminError) -> [ClusterMap.Change]
    ) async throws(AdministrationError) -> GroupSnapshot {
        await record(try saveAndMake(change), by: actor)
        guard let snapshot = snapshot().groups.first(where: { $0.id == group }) else { throw .refused(.unknownGroup(group)) }
        return snapshot
    }

    /// Makes `change` on a copy of the map, saves it, then installs it, all under the lock.
    private func saveAndMake(
        _ change: (inout ClusterMap) throws(ClusterMap.AdminError) -> [ClusterMap.Change]
    ) throws(AdministrationError) -> [ClusterMap.Change] {
        let database = self.database
        let result: Result<[ClusterMap.Change], AdministrationError> = map.withLock { map in
            var updated = map
            let changes: [ClusterMap.Change]
            do throws(ClusterMap.AdminError) {
                changes = try change(&updated)
            } catch {
                return .failure(.refused(error))
            }
            do {
                try database.saveNow(changes)
            } catch {
                return .failure(.notSaved("\(error)"))
            }
            map = updated
            return .success(changes)
        }
        if case .failure(.notSaved(let reason)) = result { logger.error("administrative change not saved, so not made: \(reason)") }
        return try result.get()
    }

    /// Removes an empty group, saved before it is made (see ``administer(group:_:)``).
    public func removeGroup(_ id: UInt32, by actor: String? = nil) async throws(AdministrationError) {
        await record(try saveAndMake { map throws(ClusterMap.AdminError) in try map.removeGroup(id) }, by: actor)
    }

    /// The group `id` belongs to, when it is a member.
    func groupOf(server id: String) -> UInt32? {
        map.withLock { $0.members[id]?.group }
    }

    /// Marks silent servers, imageservers and metaservers down; run periodically.
    public func expireSilentServers() async {
        let now = nowMs
        let changes = map.withLock { map in
            let changes = map.expire(nowMs: now, downAfterMs: configuration.downAfter.milliseconds)
            saveInOrder(changes)
            return changes
        }
        await record(changes)
        let roleChanges = frontRoles.withLock { $0.expire(nowMs: now, downAfterMs: configuration.downAfter.milliseconds) }
        await record(roleChanges)
    }

    /// Takes a heartbeat from an imageserver or a metaserver.
    /// - Returns: nil when the map has no room for another role (``FrontRoleMap/capacity``).
    public func roleHeartbeat(_ report: RoleReport) async -> RoleHeartbeatReply? {
        let now = nowMs
        let report = report.cleaned
        let changes: [FrontRoleMap.Change]? = frontRoles.withLock { roles in
            guard roles.hasRoom(for: report) else { return nil }
            return roles.apply(report, nowMs: now)
        }
        guard let changes else { return nil }
        await record(changes)
        return RoleHeartbeatReply(intervalMs: UInt64(configuration.heartbeatInterval.milliseconds))
    }

    /// Takes a progress report of an operator job.
    public func jobReport(_ report: JobReport, actor: String?) async {
        let now = nowMs
        let changes = jobs.withLock { $0.apply(report, actor: actor, nowMs: now) }
        for change in changes { await recordEvent(kind: change.event.kind, serverId: nil, message: change.event.message) }
    }

    /// Logs role changes and appends them to the event log.
    private func record(_ changes: [FrontRoleMap.Change]) async {
        for change in changes { await recordEvent(kind: change.event.kind, serverId: change.event.serverId, message: change.event.message) }
    }

    /// Logs an event and appends it to the event log; a database failure is logged, not thrown.
    private func recordEvent(kind: String, serverId: String?, group: UInt32? = nil, message: String) async {
        logger.notice("\(message)")
        do {
            try await database.recordEvent(kind: kind, serverId: serverId, group: group, message: message)
        } catch {
            logger.error("cannot record '\(message)' in the database: \(error)")
        }
    }

    /// The cluster right now.
    public func snapshot(historySeconds: Int = 0) -> ClusterSnapshot {
        let now = nowMs
        let master = advertised.withLock { $0.httpURL }
        var snapshot = map.withLock {
            $0.snapshot(master: master, nowMs: now, wallClockMs: currentTimeMillis(), historySeconds: historySeconds)
        }
        frontRoles.withLock { roles in
            snapshot.imageservers = roles.snapshots(of: .imageserver, nowMs: now)
            snapshot.metaservers = roles.snapshots(of: .metaserver, nowMs: now)
        }
        snapshot.jobs = jobs.withLock { $0.snapshots(nowMs: now) }
        return snapshot
    }

    /// Saves changes and logs them as events; a database failure is logged, not thrown, since
    /// heartbeats must go on (the next restart then forgets that change).
    /// Saves the durable part of changes just made, while the map's lock is still held, so the
    /// database sees every change in the order the map did (a fence, then an operator's word
    /// against it, say). Only changes that touch servers or groups cost a transaction; a plain
    /// heartbeat writes nothing. A failure is logged, not thrown: heartbeats must go on.
    private func saveInOrder(_ changes: [ClusterMap.Change]) {
        guard changes.contains(where: \.isDurable) else { return }
        do {
            try database.saveNow(changes)
        } catch {
            logger.error("cannot save cluster changes in the database (a master restart would forget them): \(error)")
        }
    }

    /// Logs changes and appends them to the event log (they were saved already); an operator's
    /// changes name who made them.
    private func record(_ changes: [ClusterMap.Change], by actor: String? = nil) async {
        for change in changes {
            let event = change.event
            await recordEvent(kind: event.kind, serverId: event.serverId, group: event.group, message: event.message + (actor.map { " by \($0)" } ?? ""))
        }
    }

    /// The HTTP API.
    public func router() -> Router<SpeedyRequestContext> {
        let router = Router(context: SpeedyRequestContext.self)
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger))
        configuration.security.guardRoutes(router, role: "chunkmaster", logger: logger)
        router.post("/v1/heartbeat") { request, _ in
            let report = try await request.decodeJSON(HeartbeatReport.self)
            self.metrics.heartbeats.increment()
            guard !report.serverId.isEmpty, HostPort(parsing: report.addr) != nil else {
                throw APIError.badRequest("heartbeat needs a server id and an address HOST:PORT")
            }
            do {
                return try JSONResponse.make(try await self.heartbeat(report))
            } catch let error as ClusterMap.AdminError {
                throw error.apiError
            }
        }
        router.get("/v1/cluster") { request, _ in
            let history = min(try request.queryInteger("history", as: Int.self) ?? 0, ClusterMap.historyLength)
            var snapshot = self.snapshot(historySeconds: max(0, history))
            if let events = try request.queryInteger("events", as: Int.self), events > 0 {
                snapshot.recentEvents = try self.database.latestEvents(limit: min(events, 1000))
            }
            return try JSONResponse.make(snapshot)
        }
        router.post("/v1/fileids") { request, _ in
            let count = try request.queryInteger("count", as: UInt64.self) ?? 1000
            guard (1...FileIdAllocator.maxLease).contains(count) else {
                throw APIError.badRequest("count must be between 1 and \(FileIdAllocator.maxLease)")
            }
            do {
                let lease = try await self.allocator.lease(count: count)
                self.metrics.fileIdsLeased.increment(by: Int(lease.count))
                return try JSONResponse.make(lease)
            } catch {
                self.logger.error("file id lease failed: \(error)")
                throw APIError(.serviceUnavailable, code: "LEASE_FAILED", "cannot persist the file id high-water mark: \(error)")
            }
        }
        router.get("/v1/events") { request, _ in
            let after = try request.queryInteger("after", as: Int64.self) ?? 0
            let limit = min(max(try request.queryInteger("limit", as: Int.self) ?? 100, 1), 1000)
            return try JSONResponse.make(EventPage(events: try self.database.events(after: after, limit: limit)))
        }
        router.get("/v1/health") { _, _ in "ok\n" }
        HealthRoutes.register(on: router) { .ready }
        RoleMetrics.register(on: router) { self.metrics.collect(self.snapshot()) }
        AdminRoutes(master: self).register(on: router)
        ReportRoutes(master: self).register(on: router)
        return router
    }

    /// Serves until SIGINT or SIGTERM.
    public func run() async throws {
        let expiry = PeriodicTask(name: "down-detection", interval: .milliseconds(250)) { await self.expireSilentServers() }
        try await HTTPServer.run(
            role: "chunkmaster", router: router(), listen: configuration.listen, transport: configuration.security.transport,
            services: [expiry], logger: logger
        ) { bound in
            self.advertised.withLock { $0 = self.configuration.advertise ?? bound }
        }
    }
}

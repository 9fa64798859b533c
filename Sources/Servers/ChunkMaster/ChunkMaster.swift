import Foundation
import CoreMetrics
import Hummingbird
import Logging
import ServerSupport
import SpeedyPostgres
import ServiceLifecycle
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
    /// PostgreSQL shared with other masters (one leads); nil keeps the state in SQLite under
    /// `dataDirectory`, for one master.
    public var database: PostgresURL?
    /// How long the leader lease lasts without renewal, with `database`: a dead leader's
    /// standby takes over within about this plus a sixth of it.
    public var leaseTTL: Duration
    /// Whether the leader repairs damaged chunks by itself (``AutoRepairer``).
    public var autoRepair = true
    /// How often the leader compares each group's members (range digests) and copies back the
    /// chunks one misses, with `autoRepair` (nil: never).
    public var compareEvery: Duration? = .seconds(3600)
    /// Chunks younger than this are left out of the comparison: a write may still be on its
    /// way along the chain.
    public var compareMinAge: Duration = .seconds(60)
    /// Bytes per second repairs copy at most; nil: as fast as the members serve.
    public var recoveryRate: Int?
    /// A member `DOWN` this long is replaced by a spare, when one waits (nil: never).
    public var replaceAfter: Duration? = .seconds(600)
    /// Whether members of one group may share a failure zone (`--allow-same-zone`): a cluster on
    /// one machine. Otherwise a server joining a group where another member is in its zone is
    /// refused (``ClusterMap/zoneConflict(for:in:zone:)``).
    public var allowSameZone = false

    /// Creates a configuration.
    public init(
        listen: HostPort, dataDirectory: String, downAfter: Duration = .seconds(3), heartbeatInterval: Duration = .seconds(1),
        security: RoleSecurity, advertise: HostPort? = nil, database: PostgresURL? = nil, leaseTTL: Duration = .seconds(3)
    ) {
        self.listen = listen
        self.advertise = advertise
        self.database = database
        self.leaseTTL = leaseTTL
        self.dataDirectory = dataDirectory
        self.downAfter = downAfter
        self.heartbeatInterval = heartbeatInterval
        self.security = security
    }
}

/// The chunkmaster role: the cluster map from heartbeats, group health, file id leases and the
/// event log, over HTTP (docs/api.md). With a shared database, one of several masters leads
/// (``MasterLeadership``) and the others stand by.
public final class ChunkMaster: Sendable {
    let configuration: ChunkMasterConfiguration
    let store: any MasterStore
    let allocator: FileIdAllocator
    let leadership: MasterLeadership
    /// The live map, read under its lock; changed only in a turn of ``turns``.
    let map: Mutex<ClusterMap>
    /// Serializes every change to the map with its save, so the store sees changes in the order
    /// the map made them, and an operator's change is saved before it is made.
    let turns = AsyncSerialLock()
    let frontRoles = Mutex(FrontRoleMap())
    let jobs = Mutex(JobBoard())
    let metrics = MasterMetrics()
    let advertised: Mutex<HostPort>
    /// Until when, after taking the lead, the map waits for remembered servers to report.
    let warming = Mutex<ContinuousClock.Instant?>(nil)
    /// Chunks no member holds intact, as the repairer found them; in every snapshot.
    let lost = Mutex<[ChunkKey: LostChunk]>([:])
    /// The zone refusal last logged per server, so a server retrying every heartbeat is logged once.
    let zoneRefusals = Mutex<[String: String]>([:])
    let logger: Logger
    let clock = ContinuousClock()
    let epoch: ContinuousClock.Instant

    /// Opens the store the configuration names (PostgreSQL, else SQLite in the data directory)
    /// and restores the servers it remembers (as down until they report).
    public convenience init(configuration: ChunkMasterConfiguration, logger: Logger) async throws {
        let store: any MasterStore
        if let database = configuration.database {
            store = try await PostgresMasterStore(url: database, logger: logger)
            logger.info("cluster state in PostgreSQL at \(database.redacted); leading when the lease is free")
        } else {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            store = try SQLiteMasterStore(path: configuration.dataDirectory + "/master.sqlite")
        }
        try await self.init(
            configuration: configuration, store: store,
            leadership: MasterLeadership(mode: configuration.database == nil ? .sole : .shared(ttl: configuration.leaseTTL)), logger: logger)
    }

    /// A master on `store`; a `shared` one serves once it has claimed the lease (``run()``).
    public init(configuration: ChunkMasterConfiguration, store: any MasterStore, leadership: MasterLeadership, logger: Logger) async throws {
        self.configuration = configuration
        self.logger = logger
        self.store = store
        self.leadership = leadership
        allocator = FileIdAllocator(store: store)
        // A shared master loads the map when it takes the lead (``claimLeadership()``), not before.
        map = Mutex(leadership.mode == .sole ? try await Self.loadMap(from: store, nowMs: 0) : ClusterMap())
        advertised = Mutex(configuration.advertise ?? configuration.listen)
        epoch = clock.now
    }

    /// The map as the store remembers it: every server down until it reports.
    static func loadMap(from store: any MasterStore, nowMs: Int64) async throws -> ClusterMap {
        var map = ClusterMap(startedMs: nowMs)
        let draining = try await store.drainingGroups()
        for group in try await store.groups() { map.restore(group: group, drainingSinceMs: draining[group]) }
        for server in try await store.servers() {
            map.restore(
                id: server.id, group: server.group, addr: server.addr, setStatus: server.setStatus, fencedBy: server.fencedBy,
                retired: server.retired)
        }
        return map
    }

    private var nowMs: Int64 {
        (clock.now - epoch).milliseconds
    }

    /// Takes a heartbeat and records what it changed; nil when this master does not lead (any
    /// longer), so the sender tries another.
    /// - Throws: `.serverRetired` for a server removed from the cluster; `.zoneConflict` for one
    ///   joining a group where another member is in its zone (unless ``ChunkMasterConfiguration/allowSameZone``).
    public func heartbeat(_ report: HeartbeatReport) async throws(ClusterMap.AdminError) -> HeartbeatReply? {
        let taken: ([ClusterMap.Change], GroupState, UInt32, [String])?
        do throws(ClusterMap.AdminError) {
            taken = try await apply(report)
        } catch {
            await recordRefusal(error)
            throw error
        }
        guard let (made, state, group, members) = taken else { return nil }
        zoneRefusals.withLock { _ = $0.removeValue(forKey: report.serverId) }
        await record(made)
        // A spare given a group learns it here.
        let assigned = report.spare == true && group != report.group ? group : nil
        return HeartbeatReply(
            groupState: state, intervalMs: UInt64(configuration.heartbeatInterval.milliseconds), group: assigned, members: members)
    }

    /// Applies a heartbeat to the map and saves what it changed, in one turn; nil when this
    /// master does not lead. Returns the changes, and the group it is in with its state and its
    /// members' addresses.
    private func apply(
        _ report: HeartbeatReport
    ) async throws(ClusterMap.AdminError) -> ([ClusterMap.Change], GroupState, UInt32, [String])? {
        try await turns.run { () async throws(ClusterMap.AdminError) -> ([ClusterMap.Change], GroupState, UInt32, [String])? in
            let (isLeader, fence) = leadership.lead
            guard isLeader else { return nil }
            let now = nowMs
            let (made, state, group, members) = try map.withLock { map throws(ClusterMap.AdminError) in
                guard !map.isRetired(report.serverId) else { throw .serverRetired(report.serverId) }
                if !configuration.allowSameZone { try map.checkZone(of: report) }
                let made = map.apply(report, nowMs: now)
                let group = map.members[report.serverId]?.group ?? report.group
                let members = map.members.values.filter { $0.group == group }.map(\.addr).sorted()
                return (made, map.state(of: group), group, members)
            }
            await save(made, fence: fence)
            return (made, state, group, members)
        }
    }

    /// Puts a zone refusal in the event log the first time it is made: a refused chunkserver asks
    /// again every heartbeat. Logged again once the server was let in, or with another conflict.
    func recordRefusal(_ refusal: ClusterMap.AdminError) async {
        guard case .zoneConflict(let server, let group, _, _) = refusal else { return }
        let message = "refused: \(refusal)"
        let isNew = zoneRefusals.withLock { $0.updateValue(message, forKey: server) != message }
        if isNew { await recordEvent(kind: "zone-conflict", serverId: server, group: group, message: message) }
    }

    /// Why an administrative change did not happen.
    public enum AdministrationError: Error, Sendable {
        /// The map refused it.
        case refused(ClusterMap.AdminError)
        /// It could not be saved, so it was not made: an operator's change must survive a restart.
        case notSaved(String)
        /// This master does not lead (any longer): ask the leader.
        case notLeader
    }

    /// Applies an administrative change: made on a copy of the map, saved in one transaction,
    /// then installed, all in one turn of ``changes``, so no heartbeat can come between the change
    /// saved and the change made (an operator's change is rare; the turn lasts one transaction).
    /// Returns the affected group.
    public func administer(
        group: UInt32, by actor: String? = nil, _ change: (inout ClusterMap) throws(ClusterMap.AdminError) -> [ClusterMap.Change]
    ) async throws(AdministrationError) -> GroupSnapshot {
        let made: [ClusterMap.Change]
        do throws(AdministrationError) {
            made = try await saveAndMake(change)
        } catch {
            if case .refused(let refusal) = error { await recordRefusal(refusal) }
            throw error
        }
        await record(made, by: actor)
        guard let snapshot = snapshot().groups.first(where: { $0.id == group }) else { throw .refused(.unknownGroup(group)) }
        return snapshot
    }

    /// Makes `change` on a copy of the map, saves it, then installs it, in one turn.
    private func saveAndMake(
        _ change: (inout ClusterMap) throws(ClusterMap.AdminError) -> [ClusterMap.Change]
    ) async throws(AdministrationError) -> [ClusterMap.Change] {
        try await turns.run { () async throws(AdministrationError) in
            let (isLeader, fence) = leadership.lead
            guard isLeader else { throw .notLeader }
            var updated = map.withLock { $0 }
            let made: [ClusterMap.Change]
            do throws(ClusterMap.AdminError) {
                made = try change(&updated)
            } catch {
                throw .refused(error)
            }
            do {
                try await store.save(made, fence: fence)
            } catch MasterStoreError.notLeader {
                throw .notLeader
            } catch {
                logger.error("administrative change not saved, so not made: \(error)")
                throw .notSaved("\(error)")
            }
            map.withLock { $0 = updated }
            return made
        }
    }

    /// Removes an empty group, saved before it is made (see ``administer(group:_:)``).
    public func removeGroup(_ id: UInt32, by actor: String? = nil) async throws(AdministrationError) {
        await record(try await saveAndMake { map throws(ClusterMap.AdminError) in try map.removeGroup(id) }, by: actor)
    }

    /// The group `id` belongs to, when it is a member.
    func groupOf(server id: String) -> UInt32? {
        map.withLock { $0.members[id]?.group }
    }

    /// Marks silent servers, imageservers and metaservers down; run periodically.
    public func expireSilentServers() async {
        let expired = await turns.run {
            let (isLeader, fence) = leadership.lead
            guard isLeader else { return [ClusterMap.Change]() }
            let now = nowMs
            let made = map.withLock { $0.expire(nowMs: now, downAfterMs: configuration.downAfter.milliseconds) }
            await save(made, fence: fence)
            return made
        }
        guard leadership.isLeader else { return }
        await record(expired)
        let now = nowMs
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
    func recordEvent(kind: String, serverId: String?, group: UInt32? = nil, message: String) async {
        logger.notice("\(message)")
        do {
            try await store.recordEvent(kind: kind, serverId: serverId, group: group, message: message)
        } catch {
            logger.error("cannot record '\(message)' in the database: \(error)")
        }
    }

    /// The scheme of this master's own port, for the URL it advertises.
    private var ownScheme: String { configuration.security.transport.tls == nil ? "http" : "https" }

    /// The cluster right now.
    public func snapshot(historySeconds: Int = 0) -> ClusterSnapshot {
        let now = nowMs
        let master = advertised.withLock { $0.url(scheme: ownScheme) }
        var snapshot = map.withLock {
            $0.snapshot(master: master, nowMs: now, wallClockMs: currentTimeMillis(), historySeconds: historySeconds)
        }
        frontRoles.withLock { roles in
            snapshot.imageservers = roles.snapshots(of: .imageserver, nowMs: now)
            snapshot.metaservers = roles.snapshots(of: .metaserver, nowMs: now)
            snapshot.trackers = roles.snapshots(of: .tracker, nowMs: now)
        }
        snapshot.jobs = jobs.withLock { $0.snapshots(nowMs: now) }
        snapshot.lostChunks = lost.withLock { $0.values.sorted { ($0.foundMs, $0.group, $0.fileId) < ($1.foundMs, $1.group, $1.fileId) } }
        return snapshot
    }

    /// Saves the durable part of changes just made, within the turn that made them, so the store
    /// sees every change in the order the map did (a fence, then an operator's word against it,
    /// say). Only changes that touch servers or groups cost a transaction; a plain heartbeat
    /// writes nothing. A failure is logged, not thrown: heartbeats must go on.
    private func save(_ changes: [ClusterMap.Change], fence: LeaderTerm?) async {
        guard changes.contains(where: \.isDurable) else { return }
        do {
            try await store.save(changes, fence: fence)
        } catch MasterStoreError.notLeader(let why) {
            logger.warning("cluster changes not saved: this master no longer leads (\(why)); the leader's map has its own")
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
        configuration.security.guardRoutes(router, role: .chunkmaster, logger: logger, authorization: .chunkmaster)
        router.middlewares.add(LeaderOnlyMiddleware(leadership: leadership) { self.isWarm })
        MapRoutes(master: self).register(on: router)
        router.get("/v1/health") { _, _ in "ok\n" }
        HealthRoutes.register(on: router) {
            if self.leadership.isLeader { return .ready }
            return .notReady("standby; " + (self.leadership.leaderURL.map { "the leader is \($0)" } ?? "no master leads"))
        }
        RoleMetrics.register(on: router) {
            // A standby's map is not fed by heartbeats: it publishes only that it stands by.
            let isLeader = self.leadership.isLeader
            self.metrics.leading.record(isLeader ? 1 : 0)
            self.metrics.collect(isLeader ? self.snapshot() : nil)
        }
        AdminRoutes(master: self).register(on: router)
        ReportRoutes(master: self).register(on: router)
        return router
    }

    /// A loop that runs `body` every `interval` while this master leads.
    private func leaderTask(_ name: String, every interval: Duration, _ body: @escaping @Sendable () async -> Void) -> PeriodicTask {
        PeriodicTask(name: name, interval: interval) { if self.leadership.isLeader { await body() } }
    }

    /// Serves until SIGINT or SIGTERM; with a shared database, claims the lead and renews it
    /// meanwhile, and gives it up on the way out.
    public func run() async throws {
        let expiry = PeriodicTask(name: "down-detection", interval: .milliseconds(250)) { await self.expireSilentServers() }
        var services: [any Service] = [expiry]
        // What the leader does by itself.
        let peers = configuration.security.peers
        let replacer = configuration.replaceAfter.map {
            SpareReplacer(master: self, transport: peers, after: $0, bytesPerSecond: configuration.recoveryRate, logger: logger)
        }
        if let replacer { services.append(leaderTask("spare replacement", every: .seconds(1)) { await replacer.round() }) }
        if configuration.autoRepair {
            let repairer = AutoRepairer(
                master: self, transport: peers, bytesPerSecond: configuration.recoveryRate, compareEvery: configuration.compareEvery,
                compareMinAge: configuration.compareMinAge, logger: logger)
            services.append(leaderTask("auto-repair", every: .seconds(2)) { await repairer.round() })
        }
        defer { replacer?.stop() }
        if case .shared = leadership.mode {
            await claimLeadership()
            services.append(PeriodicTask(name: "leader lease", interval: leadership.renewInterval) { await self.claimLeadership() })
        }
        try await HTTPServer.run(
            role: "chunkmaster", router: router(), listen: configuration.listen, transport: configuration.security.transport,
            secrets: configuration.security.secrets,
            roles: configuration.security.roles,
            services: services, logger: logger
        ) { bound in
            self.advertised.withLock { $0 = self.configuration.advertise ?? bound }
        }
        await leadership.resign(store: store)
    }

    /// How long a new leader waits for the servers it remembers before it shows the silent ones
    /// down: as long as any master waits before calling a server down (`--down-after`), and at
    /// least one and a half heartbeat intervals. A shorter wait showed live servers down whenever
    /// their first heartbeats to the new leader were slow (its saves queue behind the database
    /// under load), and imageservers then found no member to read from or write to.
    var warmUp: Duration {
        max(configuration.downAfter, configuration.heartbeatInterval * 1.5)
    }

    /// Whether the map is whole: not just after taking the lead, or every server the store
    /// remembers has reported since, or they had ``warmUp`` to.
    var isWarm: Bool {
        guard warming.withLock({ $0 }) != nil else { return true }
        // Servers an operator set OFFLINE are not expected to report.
        let reported = map.withLock { $0.members.values.allSatisfy { $0.report != nil || $0.setStatus == .offline } }
        let now = ContinuousClock.now
        return warming.withLock { until in
            if let deadline = until, reported || now >= deadline { until = nil }
            return until == nil
        }
    }

    /// One round of the lease: claims or renews it, and on taking the lead reloads the map from
    /// the store (another master may have changed it), with every server down until it reports.
    func claimLeadership() async {
        let url = advertised.withLock { $0.url(scheme: ownScheme) }
        let transition = await leadership.claim(store: store, url: url) { term in
            try await self.turns.run {
                let fresh = try await Self.loadMap(from: self.store, nowMs: self.nowMs)
                self.warming.withLock { $0 = .now + self.warmUp }
                self.map.withLock { $0 = fresh }
                self.frontRoles.withLock { $0 = FrontRoleMap() }
                self.jobs.withLock { $0 = JobBoard() }
            }
        }
        switch transition {
        case .became(let term)?:
            await recordEvent(kind: "master-leader", serverId: nil, message: "master \(url) leads (term \(term.term))")
        case .lost(let reason)?:
            logger.warning("master \(url) stopped leading: \(reason)")
            await recordEvent(kind: "master-standby", serverId: nil, message: "master \(url) stopped leading: \(reason)")
        case nil:
            break
        }
    }
}

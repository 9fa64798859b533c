import ChunkStorage
import Foundation
import Hummingbird
import Logging
import NIOPosix
import ServerSupport
import SpeedyClients
import SpeedyCore
import ServiceLifecycle
import Synchronization

/// The chunkserver role: serves one group's chunks from a ``ChunkStorage/VolumeChunkStore`` and
/// heartbeats its state to the master.
public enum ChunkServer {
    /// Opens the store, serves until SIGINT/SIGTERM, then saves the checkpoint and exits.
    public static func run(_ configuration: ChunkServerConfiguration) async throws {
        let logger = makeLogger(label: "speedy.chunkserver")
        // Before any metric is made: one made earlier would record nowhere.
        RoleMetrics.bootstrap()
        MemoryTuning.apply()
        // Enough idle chunk buffers for a few dozen transfers at once to reuse mapped pages.
        ChunkBufferPool.setLimit(128 << 20)
        try FileManager.default.createDirectory(atPath: configuration.store.directory, withIntermediateDirectories: true)
        let serverId = try ServerIdentity.load(directory: configuration.store.directory, requested: configuration.serverId)
        let started = ContinuousClock.now
        let master = MasterClient(baseURL: configuration.masterURL, timeout: .seconds(2), transport: configuration.security.peers)
        let membership =
            configuration.spare
            ? try GroupMembership(configured: GroupMembership.spareGroup, spare: true, directory: configuration.store.directory)
            : GroupMembership(fixed: configuration.group)
        let store = try await openStore(configuration, membership: membership, serverId: serverId, master: master, logger: logger)
        let counters = TrafficCounters()
        let heartbeat = HeartbeatSource(
            store: store, counters: counters, serverId: serverId, membership: membership,
            advertised: configuration.advertise ?? configuration.listen, zone: configuration.zone, started: started)
        let scrubber = makeScrubber(
            configuration, store: store, membership: membership, counters: counters, serverId: serverId, master: master, heartbeat: heartbeat,
            logger: logger)
        heartbeat.scrubber.withLock { $0 = scrubber }
        // Whole-chunk reads go from the volume file to the socket by sendfile, on plain HTTP.
        var transport = configuration.security.transport
        if transport.tls == nil { transport.fileRegions = FileRegionResponses() }
        let listening = Mutex(false)
        let refusals = RefusalLog(logger: logger)
        // The one way a heartbeat is sent: every interval, and when a chain names an unknown member.
        let sendHeartbeat: @Sendable (ChainMembers) async -> Void = { chainMembers in
            guard listening.withLock({ $0 }) else { return }
            await Self.heartbeat(
                master: master, report: heartbeat.report(), membership: membership, chainMembers: chainMembers, refusals: refusals,
                masterURL: configuration.masterURL, logger: logger)
        }
        let chainMembers = ChainMembers(heartbeat: sendHeartbeat)
        let router = Self.router(
            store: store, configuration: configuration, membership: membership, counters: counters, report: heartbeat.report, scrubber: scrubber,
            fileRegions: transport.fileRegions, chainMembers: chainMembers, logger: logger)
        let compactor = Compactor(
            store: store, master: master, serverId: serverId, membership: membership,
            threshold: configuration.compactThreshold, bytesPerSecond: configuration.compactRate, logger: logger)
        compactor.register(on: router)
        var services: [any Service] = periodicTasks(
            configuration, store: store, compactor: compactor, logger: logger, heartbeat: { await sendHeartbeat(chainMembers) })
        if let scrubber { services.append(scrubber) }
        do {
            try await HTTPServer.run(
                role: "chunkserver", router: router, listen: configuration.listen, transport: transport,
                secrets: configuration.security.secrets, roles: configuration.security.roles, services: services,
                logger: logger
            ) { bound in
                heartbeat.advertised.withLock { $0 = configuration.advertise ?? bound }
                listening.withLock { $0 = true }
            }
        } catch {
            await store.close()
            throw error
        }
        await store.close()
        logger.notice("chunkserver \(serverId) stopped; index checkpoint saved")
    }

    /// Sends one heartbeat and takes what its reply says: the group a spare was given, and the
    /// group's members a chain may name.
    static func heartbeat(
        master: MasterClient, report: HeartbeatReport, membership: GroupMembership, chainMembers: ChainMembers, refusals: RefusalLog,
        masterURL: String, logger: Logger
    ) async {
        do {
            let reply = try await master.heartbeat(report)
            refusals.accepted()
            if reply.members == nil, chainMembers.listing != .unlisted {
                logger.warning("the master does not list the group's members (an older version): chained PUTs are passed on unchecked")
            }
            chainMembers.update(reply.members)
            if let group = reply.group, try membership.assign(group) {
                logger.notice("the master made this spare a member of group \(group): serving it from now on")
            }
        } catch let error as ServiceError where error.httpStatus == 409 {
            refusals.refused(error)
        } catch {
            logger.warning("heartbeat to \(masterURL) failed: \(error)")
        }
    }

    /// Opens the store off the event loops (the scan may take minutes), sending `INIT` heartbeats
    /// meanwhile so the master sees a server recovering rather than a silent one.
    private static func openStore(
        _ configuration: ChunkServerConfiguration, membership: GroupMembership, serverId: String, master: MasterClient, logger: Logger
    ) async throws -> VolumeChunkStore {
        let initializing = Task {
            var hello = HeartbeatReport.initializing(
                serverId: serverId, group: membership.group, addr: (configuration.advertise ?? configuration.listen).description)
            hello.spare = membership.startedAsSpare ? true : nil
            hello.zone = configuration.zone
            while !Task.isCancelled {
                _ = try? await master.heartbeat(hello)
                try? await Task.sleep(for: configuration.heartbeatInterval)
            }
        }
        defer { initializing.cancel() }
        let store = try await NIOThreadPool.singleton.runIfActive {
            try VolumeChunkStore(configuration: configuration.store, logger: logger)
        }
        let r = store.recovery
        logger.notice(
            "store open: \(r.chunks) chunks in \(r.volumes) volumes, \(r.recordsScanned) records scanned, checkpoint \(r.usedCheckpoint ? "used" : "absent"), \(r.tornTails) torn tails dropped, \(r.corruptRecords) corrupt"
        )
        return store
    }

    /// The background scrub (none with `--scrub-rate 0`). Each damaged chunk it or a read finds
    /// goes to the master's event log and, in a heartbeat sent at once, to its repairer.
    private static func makeScrubber(
        _ configuration: ChunkServerConfiguration, store: VolumeChunkStore, membership: GroupMembership, counters: TrafficCounters,
        serverId: String, master: MasterClient, heartbeat: HeartbeatSource, logger: Logger
    ) -> Scrubber? {
        guard configuration.scrubRate > 0 else { return nil }
        return Scrubber(
            store: store, membership: membership, settings: .init(rate: configuration.scrubRate, every: configuration.scrubEvery),
            directory: configuration.store.directory, counters: counters, logger: logger
        ) { fileId, why in
            let group = membership.group
            let message = "chunk \(group)/\(fileId) damaged on \(serverId), \(why)"
            try? await master.recordEvent(EventReport(kind: "chunk-damaged", serverId: serverId, group: group, message: message))
            _ = try? await master.heartbeat(heartbeat.report())
        }
    }

    /// The heartbeat, the index checkpoint and (with an interval) compaction, as services.
    private static func periodicTasks(
        _ configuration: ChunkServerConfiguration, store: VolumeChunkStore, compactor: Compactor, logger: Logger,
        heartbeat: @escaping @Sendable () async -> Void
    ) -> [PeriodicTask] {
        let checkpointer = PeriodicTask(name: "checkpoint", interval: configuration.checkpointInterval) {
            guard store.needsCheckpoint else { return }
            // Encoding and syncing a large index blocks: not on an event loop.
            do { try await NIOThreadPool.singleton.runIfActive { try store.checkpoint() } } catch { logger.error("index checkpoint failed: \(error)") }
        }
        var services = [PeriodicTask(name: "heartbeat", interval: configuration.heartbeatInterval, body: heartbeat), checkpointer]
        if let interval = configuration.compactInterval {
            services.append(PeriodicTask(name: "compaction", interval: interval) { _ = await compactor.run(threshold: nil) })
        }
        return services
    }

    /// The API over `store` behind the cluster secret (or, for a chunk read, a chunk ticket), but
    /// for compaction's routes (which need the master): what ``run(_:)`` serves, and what tests
    /// drive in process.
    static func router(
        store: VolumeChunkStore, configuration: ChunkServerConfiguration, membership: GroupMembership? = nil, counters: TrafficCounters,
        report: @escaping @Sendable () -> HeartbeatReport, scrubber: Scrubber? = nil, fileRegions: FileRegionResponses? = nil,
        chainMembers: ChainMembers? = nil, logger: Logger
    ) -> Router<SpeedyRequestContext> {
        let router = Router(context: SpeedyRequestContext.self)
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger))
        configuration.security.guardRoutes(router, role: .chunkserver, logger: logger, authorization: .chunkserver, chunkTickets: true)
        let metrics = ChunkServerMetrics()
        RoleMetrics.register(on: router) { metrics.collect(report(), volumes: store.volumeStats()) }
        HealthRoutes.register(on: router) {
            store.usage().health == .failing ? .notReady("a disk write or fsync failed: the store is read-only until an operator looks") : .ready
        }
        var routes = ChunkRoutes(
            store: store, membership: membership ?? GroupMembership(fixed: configuration.group), counters: counters, stats: report,
            maxChunkBytes: configuration.store.maxChunkBytes, peers: configuration.security.peers)
        routes.fileRegions = fileRegions
        routes.chainMembers = chainMembers
        if let scrubber { routes.onDamage = { fileId, why in await scrubber.noteDamaged(fileId, why: why) } }
        routes.register(on: router)
        return router
    }
}

/// What the chunkserver tells the master every heartbeat: its store's health, space and traffic.
final class HeartbeatSource: Sendable {
    let store: VolumeChunkStore
    let counters: TrafficCounters
    let serverId: String
    let membership: GroupMembership
    /// The address this server is reached at (known once it listens, or `--advertise`).
    let advertised: Mutex<HostPort>
    /// `--zone`; nil leaves the master to take the advertised address's host.
    let zone: String?
    let started: ContinuousClock.Instant
    /// Set once at start, before the first heartbeat; nil with `--scrub-rate 0`. (The scrubber
    /// sends heartbeats itself, so it is made after this.)
    let scrubber = Mutex<Scrubber?>(nil)

    init(
        store: VolumeChunkStore, counters: TrafficCounters, serverId: String, membership: GroupMembership, advertised: HostPort,
        zone: String? = nil, started: ContinuousClock.Instant
    ) {
        self.zone = zone
        self.store = store
        self.counters = counters
        self.serverId = serverId
        self.membership = membership
        self.advertised = Mutex(advertised)
        self.started = started
    }

    /// The report as of now.
    @Sendable func report() -> HeartbeatReport {
        let usage = store.usage()
        let status: ServerStatus =
            switch usage.health {
            case .writable: .readWrite
            case .full: .readOnly
            case .failing: .error
            }
        var report = HeartbeatReport(
            serverId: serverId, group: membership.group, addr: advertised.withLock { $0.description }, status: status,
            diskTotalBytes: usage.totalBytes, diskUsedBytes: usage.usedBytes, diskFreeBytes: usage.freeBytes,
            chunkCount: usage.chunkCount, chunkBytes: usage.chunkBytes,
            readBytes: counters.readBytes.load(ordering: .relaxed), writeBytes: counters.writeBytes.load(ordering: .relaxed),
            readOps: counters.readOps.load(ordering: .relaxed), writeOps: counters.writeOps.load(ordering: .relaxed),
            crcErrors: usage.crcErrors, ioErrors: usage.ioErrors, pendingWrites: usage.pendingWrites,
            uptimeMs: UInt64((ContinuousClock.now - started).milliseconds),
            reclaimableBytes: UInt64(store.volumeStats().reduce(0) { $0 + $1.deadBytes }),
            reclaimedBytes: store.compactionTotals.bytes, scrub: scrubber.withLock { $0 }?.report(),
            spare: membership.startedAsSpare ? true : nil)
        report.zone = zone
        return report
    }
}

import Foundation
import GarbageCollection
import Hummingbird
import Logging
import Metrics
import CoreMetrics
import ServiceLifecycle
import Replication
import ServerSupport
import SpeedyClients
import SpeedyPostgres
import SpeedyCore
import Synchronization

/// Everything `speedy metaserver` needs to run.
public struct MetaServerConfiguration: Sendable {
    /// Where the HTTP API listens.
    public var listen: HostPort
    /// Directory for `meta.sqlite`.
    public var dataDirectory: String
    /// A PostgreSQL database to use instead of SQLite (several metaservers may share it).
    public var database: PostgresURL?
    /// The cluster secret and TLS.
    public var security: RoleSecurity
    /// Background garbage collection; nil when it is run only by hand (`chunktool gc`).
    public var collection: CollectionSchedule?
    /// The chunkmaster to heartbeat to; nil sends none.
    public var masterURL: String?
    /// The id reported to the master (default `metaserver@HOST:PORT`).
    public var id: String?
    /// The retention file: which tags each repository keeps (docs/gc.md, "Retention"); the
    /// scheduled collection applies it before it sweeps. Nil: no tag is removed but by hand.
    public var retentionFile: String?
    /// The sync file: jobs that copy repositories between registries on a schedule
    /// (docs/registry.md, "Replication"). Nil: none.
    public var syncFile: String?
    /// The chunkmaster the sync jobs report to (their runs on the job board, their events).
    public var syncMasterURL: String?

    /// When and how the metaserver collects garbage itself.
    public struct CollectionSchedule: Sendable {
        /// Time between the end of one collection and the start of the next.
        public var interval: Duration
        /// The chunkmaster, for the cluster map.
        public var masterURL: String
        /// Grace periods and whether to compact.
        public var options: GarbageCollectionOptions

        /// Creates a schedule.
        public init(interval: Duration, masterURL: String, options: GarbageCollectionOptions) {
            self.interval = interval
            self.masterURL = masterURL
            self.options = options
        }
    }

    /// Creates a configuration.
    public init(listen: HostPort, dataDirectory: String, security: RoleSecurity) {
        self.listen = listen
        self.dataDirectory = dataDirectory
        self.security = security
    }
}

/// What the metaserver's own metrics need of its store beyond ``SpeedyCore/MetadataStore``.
public protocol UploadSessionCounting: Sendable {
    /// Upload sessions open now.
    func uploadSessionCount() async throws(MetadataError) -> Int
}

/// The metaserver role: a ``SQLiteMetadataStore`` or ``PostgresMetadataStore`` served over HTTP
/// for imageservers (docs/api.md).
public enum MetaServer {
    /// Opens the database and serves until SIGINT or SIGTERM.
    public static func run(_ configuration: MetaServerConfiguration) async throws {
        let logger = makeLogger(label: "speedy.metaserver")
        // Before any metric is made: one made earlier would record nowhere.
        RoleMetrics.bootstrap()
        let store = try await openStore(configuration, logger: logger)
        let retention = try configuration.retentionFile.map { path throws(ReloadableFileError) in try RetentionRules(retentionFile: path) }
        if let retention { logger.notice("retention rules from \(retention.path): \(retention.current.rules.count) rules") }
        let syncJobs = try configuration.syncFile.map { path throws(ReloadableFileError) in try SyncJobs(syncFile: path) }
        var services: [any Service] = []
        let tally = RequestTally()
        // Open upload sessions, counted in the database every few seconds for the heartbeat.
        let sessions = SessionCount()
        let heartbeat = configuration.masterURL.map { url in
            RoleHeartbeat(
                role: .metaserver, id: configuration.id, master: MasterClient(baseURL: url, timeout: .seconds(2), transport: configuration.security.peers), tally: tally,
                openUploads: { sessions.value.load(ordering: .relaxed) }, readiness: ReadinessCheck { await readiness(of: store) },
                logger: logger)
        }
        if let heartbeat {
            services.append(heartbeat)
            services.append(
                PeriodicTask(name: "upload session count", interval: .seconds(3)) {
                    if let open = try? await store.uploadSessionCount() { sessions.value.store(UInt64(max(0, open)), ordering: .relaxed) }
                })
        }
        if let schedule = configuration.collection {
            let peers = configuration.security.peers
            let master = MasterClient(baseURL: schedule.masterURL, transport: peers)
            let collector = GarbageCollector(meta: store, master: master, cluster: peers, logger: logger)
            services.append(
                PeriodicTask(name: "garbage collection", interval: schedule.interval) {
                    // The rules first: what they untag, this very collection sweeps (after its grace).
                    if let retention {
                        await applyRetention(retention, store: store, dryRun: schedule.options.dryRun, master: master, logger: logger)
                    }
                    do {
                        _ = try await collector.run(schedule.options)
                    } catch {
                        logger.warning("garbage collection could not run: \(error)")
                    }
                })
        }
        if let syncJobs {
            logger.notice("sync jobs from \(syncJobs.path): \(syncJobs.current.map(\.name).joined(separator: ", "))")
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
            let master = configuration.syncMasterURL.map { MasterClient(baseURL: $0, transport: configuration.security.peers) }
            services.append(ScheduledSync(jobs: syncJobs, statePath: configuration.dataDirectory + "/sync-state.json", master: master, logger: logger))
        }
        try await HTTPServer.run(
            role: "metaserver",
            router: router(store: store, security: configuration.security, logger: logger, tally: tally, retention: retention) {
                if let open = try? await store.uploadSessionCount() { Gauge(label: "speedy_metaserver_upload_sessions").record(open) }
            },
            listen: configuration.listen, transport: configuration.security.transport, secrets: configuration.security.secrets,
            roles: configuration.security.roles, onHangup: {
                retention?.reload(logger: logger)
                syncJobs?.reload(logger: logger)
            },
            services: services, logger: logger
        ) { bound in heartbeat?.listening(at: bound) }
    }

    /// One scheduled run of the retention rules; what it removed goes to the cluster's event log.
    static func applyRetention(_ rules: RetentionRules, store: some MetadataStore, dryRun: Bool, master: MasterClient, logger: Logger) async {
        do {
            let report = try await RetentionSweep(meta: store, logger: logger).run(rules.current, dryRun: dryRun)
            if !dryRun, report.tagsRemoved > 0 {
                try? await master.recordEvent(EventReport(kind: "retention", message: report.summary + " in \(report.durationMs) ms"))
            }
        } catch {
            logger.warning("retention could not run: \(error)")
        }
    }

    /// PostgreSQL when a database is named, else SQLite in the data directory.
    static func openStore(_ configuration: MetaServerConfiguration, logger: Logger) async throws -> any MetadataStore & UploadSessionCounting {
        if let database = configuration.database {
            let store = try await PostgresMetadataStore(url: database, logger: logger)
            logger.info("metadata in PostgreSQL at \(database.redacted)")
            return store
        }
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        return try SQLiteMetadataStore(path: configuration.dataDirectory + "/meta.sqlite")
    }

    /// Ready when the database answers a read.
    static func readiness(of store: some MetadataStore) async -> Readiness {
        do {
            _ = try await store.repositories(after: nil, limit: 1)
            return .ready
        } catch {
            return .notReady("the database does not answer: \(error)")
        }
    }

    /// The HTTP API over any store (tests serve a store in-process with it), behind the cluster secret.
    public static func router(
        store: some MetadataStore, security: RoleSecurity, logger: Logger = Logger(label: "speedy.metaserver"),
        tally: RequestTally = RequestTally(), retention: RetentionRules? = nil, collectMetrics: @escaping @Sendable () async -> Void = {}
    ) -> Router<SpeedyRequestContext> {
        let router = Router(context: SpeedyRequestContext.self)
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger, tally: tally))
        security.guardRoutes(router, role: .metaserver, logger: logger, authorization: .metaserver)
        router.middlewares.add(MetadataErrorMiddleware())

        BlobRecordRoutes(store: store).register(on: router)
        ManifestRecordRoutes(store: store).register(on: router)
        UploadSessionRoutes(store: store).register(on: router)
        CollectionRoutes(store: store).register(on: router)
        ChunkUserRoutes(store: store).register(on: router)
        ChunkMoveRoutes(store: store).register(on: router)
        RetentionRoutes(store: store, rules: retention, logger: logger).register(on: router)
        router.get("/v1/health") { _, _ in "ok\n" }
        HealthRoutes.register(on: router) { await readiness(of: store) }
        RoleMetrics.register(on: router, collect: collectMetrics)
        return router
    }
}

/// Answers every ``SpeedyCore/MetadataError`` with its status and wire body.
struct MetadataErrorMiddleware: RouterMiddleware {
    typealias Context = SpeedyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as MetadataError {
            return try JSONResponse.make(error.errorBody, status: HTTPResponse.Status(code: error.code.status))
        }
    }
}

/// The metaserver's open upload sessions as last counted, for its heartbeat.
final class SessionCount: Sendable {
    let value = Atomic<UInt64>(0)
}

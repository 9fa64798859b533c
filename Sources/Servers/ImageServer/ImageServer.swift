import AsyncHTTPClient
import CoreMetrics
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import ServerSupport
import SpeedyClients
import ServiceLifecycle
import SpeedyCore

/// The imageserver role: a stateless OCI registry whose blobs are cut into chunks stored on
/// chunkserver groups, and whose metadata lives in the metaserver.
public enum ImageServer {
    /// Serves until SIGINT or SIGTERM.
    public static func run(_ configuration: ImageServerConfiguration) async throws {
        let logger = makeLogger(label: "speedy.imageserver")
        // Before any metric is made: one made earlier would record nowhere.
        RoleMetrics.bootstrap()
        MemoryTuning.apply()
        // Buffers in use never exceed the budget, so idle ones up to the budget add nothing to
        // the peak: what one burst mapped, the next reuses.
        ChunkBufferPool.setLimit(configuration.memoryBudget)
        // Before the HTTP client exists: a file that cannot be read ends the start with its error.
        let auth = try await RegistryAuth.load(configuration.auth, logger: logger)
        let cluster = configuration.cluster
        let http = makeClusterClient(readTimeout: .seconds(60), cluster: cluster)
        let readHTTP = makeClusterClient(readTimeout: readSilenceLimit, cluster: cluster)
        let master = MasterClient(baseURL: configuration.masterURL, transport: cluster, http: http)
        let view = ClusterView(master: master, logger: logger)
        let io = ChunkIO(
            view: view, ids: FileIdPool(master: master, leaseSize: configuration.leaseSize), cluster: cluster, http: http, readHTTP: readHTTP,
            reader: ChunkReadClient(options: ChunkReadClient.Options(silenceLimit: readSilenceLimit)),
            attempts: configuration.writeAttempts, logger: logger)
        let meta = MetaClient(baseURL: configuration.metaURL, outageWait: configuration.metaOutageWait, transport: cluster, http: http)
        let pullThrough = configuration.upstreams.isEmpty ? nil : try PullThroughCache(upstreams: configuration.upstreams)
        for upstream in configuration.upstreams {
            logger.notice("pull-through cache: \(upstream.prefix)/… comes from \(upstream.url) (tags checked every \(upstream.tagTTL))")
        }
        let api = RegistryAPI(
            meta: meta, io: io,
            budget: MemoryBudget(
                bytes: configuration.memoryBudget, perClient: configuration.memoryPerClient, waitLimit: configuration.memoryWaitLimit),
            configuration: configuration, logger: logger, pullThrough: pullThrough)
        let expiry = UploadExpiry(meta: api.meta, io: io, expiry: configuration.uploadExpiry, logger: logger)
        let watchdog = IdleWatchdog(limit: configuration.clientIdleLimit, logger: logger)
        let tally = RequestTally()
        // Probes get the answer of at most one check a second, with short timeouts.
        let metaProbe = MetaClient(baseURL: configuration.metaURL, timeout: .seconds(2), transport: cluster, http: http)
        let readiness = ReadinessCheck {
            // The registry's /readyz answers anyone: it names no internal address.
            guard await metaProbe.isReady() else { return .notReady("no metaserver answers") }
            guard await view.hasWritableGroup() else { return .notReady("no group takes writes (or the master does not answer)") }
            return .ready
        }
        let heartbeat = RoleHeartbeat(
            role: .imageserver, id: configuration.id, master: master, tally: tally, interval: configuration.refreshInterval,
            openUploads: { UInt64(max(0, api.uploadsInProgress.value)) }, readiness: readiness, logger: logger)
        let router = makeRouter(
            api: api, auth: auth, watchdog: watchdog, readiness: readiness, tally: tally, configuration: configuration, logger: logger)
        let refresher = PeriodicTask(name: "cluster-map", interval: configuration.refreshInterval) { await view.refresh() }
        let pulls = PeriodicTask(name: "tag pulls", interval: configuration.pullRecordInterval) { await api.pullLog.send(to: api.meta, logger: logger) }
        do {
            try await HTTPServer.run(
                role: "imageserver", router: router, listen: configuration.listen, transport: configuration.transport,
                secrets: configuration.cluster.secrets, roles: configuration.roles, onHangup: { await Self.reload(auth, audit: configuration.auditLog, logger: logger) },
                services: [refresher, pulls, watchdog, expiry.task, heartbeat], logger: logger
            ) { bound in heartbeat.listening(at: bound) }
        } catch {
            await pullThrough?.shutdown()
            try? await http.shutdown()
            try? await readHTTP.shutdown()
            throw error
        }
        await pullThrough?.shutdown()
        try? await http.shutdown()
        try? await readHTTP.shutdown()
    }

    /// The registry's routes behind its middleware. Outermost first: telemetry (so refusals count
    /// too), errors in OCI form, the cluster secret on all but ``publicPaths``, the rate limit, credentials, then
    /// the watchdog.
    static func makeRouter(
        api: RegistryAPI, auth: RegistryAuth, watchdog: IdleWatchdog, readiness: ReadinessCheck, tally: RequestTally,
        configuration: ImageServerConfiguration, logger: Logger
    ) -> Router<RegistryRequestContext> {
        let router = Router(context: RegistryRequestContext.self)
        // First: everything after it (logs, limits, login throttles) sees the client, not the proxy.
        if let proxies = configuration.trustedProxies { router.middlewares.add(TrustedProxyMiddleware(proxies: proxies)) }
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger, tally: tally) { OCIPath(path: $0.uri.path)?.routeLabel })
        // Outside the error middleware, so it sees every refusal as the status it was answered.
        if let audit = configuration.auditLog { router.middlewares.add(AuditMiddleware(log: audit)) }
        router.middlewares.add(OCIErrorMiddleware(logger: logger))
        if let secrets = configuration.cluster.secrets {
            router.middlewares.add(
                ClusterSecretMiddleware(
                    secrets: secrets, audience: .imageserver, roles: configuration.roles, authorization: .imageserver, logger: logger,
                    open: publicPaths))
        }
        if configuration.requestsPerSecond > 0 {
            router.middlewares.add(
                RateLimitMiddleware(limiter: RateLimiter(rate: configuration.requestsPerSecond, burst: 2 * configuration.requestsPerSecond)))
        }
        router.middlewares.add(RegistryAuthMiddleware(auth: auth, logger: logger, tls: configuration.transport.tls != nil))
        router.middlewares.add(IdleWatchdogMiddleware(watchdog: watchdog))
        api.register(on: router)
        if configuration.auth.enabled {
            TokenRoute(auth: auth, logger: logger).register(on: router)
            logger.notice("logins required by the access rules; token endpoint at /token (service \"\(configuration.auth.service)\")")
        }
        router.get("/health") { _, _ in "ok\n" }
        HealthRoutes.register(on: router) { await readiness.current() }
        RoleMetrics.register(on: router) {
            Gauge(label: "speedy_imageserver_uploads_in_progress").record(api.uploadsInProgress.value)
            Gauge(label: "speedy_imageserver_memory_budget_used_bytes").record(api.budget.capacity - api.budget.available)
        }
        return router
    }

    /// What the registry's port answers without the cluster secret: the OCI API (which has logins
    /// of its own), the token endpoint and the probes. Everything else, `/metrics` and any route
    /// added later, asks for the secret, however its path is spelled.
    static let publicPaths = PublicPaths(paths: HealthRoutes.openPaths.union(["/health", "/token"]), trees: ["/v2"])

    /// How long a chunk read may wait for the next bytes from a member before another member is
    /// asked: a whole 4 MiB chunk crosses a loaded 1 Gbit/s link in well under a second.
    static let readSilenceLimit: TimeAmount = .seconds(5)

    /// An HTTP client for chunkservers and the master, giving up after `readTimeout` of silence.
    /// What SIGHUP re-reads besides the credentials every role has: the registry's users, access
    /// rules and token keys, and the audit log, reopened (a rotation may have moved it away).
    private static func reload(_ auth: RegistryAuth, audit: AuditLog?, logger: Logger) async {
        await auth.reload()
        do {
            try audit?.reopen()
        } catch {
            logger.error("\(error); still writing to the file opened before")
        }
    }

    private static func makeClusterClient(readTimeout: TimeAmount, cluster: ClusterTransport) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        // Many uploads and pulls reach each chunkserver at once; allow enough connections per host.
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 128)
        // A member that refuses is down: fail now so the read tries another member, the write
        // another group, rather than retrying the connection until the request's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(3), read: readTimeout)
        cluster.applyTLS(to: &configuration)
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}

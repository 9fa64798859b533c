import CoreMetrics
import Hummingbird
import Logging
import ServerSupport
import ServiceLifecycle
import SpeedyClients
import SpeedyCore

/// `speedy tracker`: the swarm's directory. Node agents (`speedy peer`) announce which chunks of
/// which blobs they hold and ask who holds a blob's chunks; the tracker keeps that in memory
/// only (``SwarmTable``), so any host can run it, it needs no cluster data, and a restart loses
/// nothing the agents' next full announces do not bring back (docs/architecture.md says why it
/// is a role of its own). Every request is signed with the peer secret.
public enum Tracker {
    /// Serves until SIGINT or SIGTERM.
    public static func run(_ configuration: TrackerConfiguration, logger: Logger = makeLogger(label: "speedy.tracker")) async throws {
        RoleMetrics.bootstrap()
        let table = SwarmTable(interval: configuration.announceInterval, limits: configuration.limits)
        let tally = RequestTally()
        let router = makeRouter(table: table, configuration: configuration, tally: tally, logger: logger)
        let heartbeat = configuration.masterURL.map { masterURL in
            RoleHeartbeat(
                role: .tracker, id: configuration.id,
                master: MasterClient(baseURL: masterURL, timeout: .seconds(2), transport: configuration.security.peers), tally: tally,
                readiness: ReadinessCheck { .ready }, logger: logger, swarm: { table.summary() })
        }
        logger.notice("speedy tracker: agents announce every \(DurationText.format(configuration.announceInterval)) (forgotten after \(table.expiryMs / 1000) s of silence)")
        try await HTTPServer.run(
            role: "tracker", router: router, listen: configuration.listen, transport: configuration.security.transport,
            secrets: configuration.security.secrets,
            roles: configuration.security.roles,
            services: heartbeat.map { [$0] } ?? [], logger: logger
        ) { bound in heartbeat?.listening(at: bound) }
    }

    /// The tracker's routes behind their guards, outermost first: telemetry (refusals count too),
    /// the cluster secret on `/metrics` when there is one (Prometheus scrapes as it does every
    /// role), the peer signature on the swarm's routes (and on `/metrics` without a cluster secret).
    public static func makeRouter(
        table: SwarmTable, configuration: TrackerConfiguration, tally: RequestTally = RequestTally(), logger: Logger
    ) -> Router<SpeedyRequestContext> {
        let router = Router(context: SpeedyRequestContext.self)
        // A fleet's announces and lookups, thousands a second, would bury the log at `info`: the
        // request log is there at `debug` (refused signatures are warned about regardless).
        var requestLog = logger
        if requestLog.logLevel == .info { requestLog.logLevel = .notice }
        router.middlewares.add(RequestTelemetryMiddleware(logger: requestLog, tally: tally) { TrackerRoutes.routeLabel($0.uri.path) })
        let key = PeerKey(secret: configuration.peerSecret)
        if let secrets = configuration.security.secrets {
            let swarmPaths = PublicPaths(paths: HealthRoutes.openPaths, trees: ["/v1"])
            router.middlewares.add(
                ClusterSecretMiddleware(
                    secrets: secrets, audience: .tracker, roles: configuration.security.roles, authorization: .tracker, logger: logger,
                    open: swarmPaths))
            let metricsPath = PublicPaths(paths: HealthRoutes.openPaths.union(["/metrics"]))
            router.middlewares.add(PeerSignatureMiddleware(key: key, logger: logger, open: metricsPath))
        } else {
            router.middlewares.add(PeerSignatureMiddleware(key: key, logger: logger))
        }
        TrackerRoutes(table: table, logger: logger).register(on: router)
        HealthRoutes.register(on: router) { .ready }
        RoleMetrics.register(on: router) {
            let summary = table.summary()
            Gauge(label: "speedy_tracker_agents").record(summary.agents)
            Gauge(label: "speedy_tracker_blobs").record(summary.blobs)
            Gauge(label: "speedy_tracker_announces_per_second").record(summary.announcesPerSecond)
            Gauge(label: "speedy_tracker_lookups_per_second").record(summary.lookupsPerSecond)
            Gauge(label: "speedy_tracker_served_bytes_per_second").record(summary.servedBytesPerSecond)
            Gauge(label: "speedy_tracker_quarantined_agents").record(summary.quarantined?.count ?? 0)
        }
        return router
    }
}

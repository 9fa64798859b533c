import AsyncHTTPClient
import CoreMetrics
import Hummingbird
import Logging
import NIOHTTP1
import ServiceLifecycle
import ServerSupport
import SpeedyClients
import SpeedyCore

/// `speedy peer`: the node agent, one per client host. A pull-only registry mirror for the
/// host's docker, podman, containerd or skopeo: manifests and every authorization come from the
/// registry (with the client's own credentials), blobs come as chunks straight from the
/// chunkservers with the per-chunk tickets the registry hands out, into a bounded disk cache
/// that serves repeat pulls. It holds no cluster secret (docs/peer.md).
///
/// Where blob bytes come from is the ``BlobRoute``'s concern alone, so peers (other agents
/// holding the chunks) can become one more source in front of the chunkservers.
public enum PeerAgent {
    /// Runs the agent until SIGINT or SIGTERM.
    public static func run(_ configuration: PeerAgentConfiguration, logger: Logger = makeLogger(label: "speedy.peer")) async throws {
        let metrics = PeerMetrics()
        let transport: ClusterTransport
        do {
            transport = try ClusterTransport(secret: nil, caFile: configuration.caFile)
        } catch {
            throw PeerError.configuration("--ca \(configuration.caFile ?? ""): \(error)")
        }
        let cache = try BlobCache(directory: configuration.cacheDirectory, limit: configuration.cacheBytes, logger: logger)
        let upstream = RegistryUpstream(
            baseURL: configuration.registryURL, transport: transport, timeout: configuration.registryTimeout,
            readIdle: configuration.readIdleTimeout, metrics: metrics, logger: logger)
        let swarm = configuration.swarm.map { SwarmMembership(configuration: $0, transport: transport, cache: cache, metrics: metrics, logger: logger) }
        let getter = ChunkGetter(http: transport.peerHTTP, headTimeout: configuration.chunkTimeout, idleTimeout: configuration.chunkTimeout)
        var peerGetter = getter
        // A peer streams a chunk it is still receiving: its body may pause while its own source does.
        if let swarm = configuration.swarm { peerGetter.idleTimeout = swarm.chunkWait + configuration.chunkTimeout }
        let fetcher = ChunkFetcher(
            transport: transport, getter: getter, peerGetter: peerGetter, signer: swarm?.signer, window: configuration.chunkWindow,
            metrics: metrics, logger: logger)
        let context = DownloadContext(
            fetcher: fetcher, upstream: upstream, cache: cache, tracker: swarm?.tracker, announcer: swarm?.announcer, index: swarm?.index,
            lookupInterval: configuration.swarm?.lookupInterval ?? .seconds(1), metrics: metrics, logger: logger)
        let downloads = SwarmDownloads(context: context, window: configuration.chunkWindow)
        let blobs = BlobRoute(
            upstream: upstream, cache: cache, fetcher: fetcher, downloads: downloads, blobsFromRegistry: configuration.blobsFromRegistry,
            metrics: metrics, logger: logger)

        let router = Router(context: SpeedyRequestContext.self)
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger) { MirrorRoutes.routeLabel($0.uri.path) })
        let watchdog = IdleWatchdog(limit: configuration.clientIdleTimeout, logger: logger)
        router.middlewares.add(IdleWatchdogMiddleware(watchdog: watchdog))
        MirrorRoutes(upstream: upstream, blobs: blobs).register(on: router)
        let readiness = ReadinessCheck(maxAge: .seconds(2)) { await registryReadiness(upstream) }
        HealthRoutes.register(on: router) { await readiness.current() }
        // The agent listens for its own host; its metrics carry no cluster data.
        RoleMetrics.register(on: router) { metrics.collect(cache: cache.usage()) }
        logger.notice("speedy peer: mirroring \(configuration.registryURL) (pulls only), cache \(configuration.cacheDirectory)")
        var services: [any Service] = [watchdog]
        if let swarm { services += swarm.services(downloads: downloads, logger: logger) }
        // A request head left half sent never reaches the watchdog (it watches requests the
        // router has): the connection's own idle timeout closes it, after the same time.
        try await HTTPServer.run(
            role: "peer", router: router, listen: configuration.listen, transport: ServerTransport(idleTimeout: configuration.clientIdleTimeout),
            services: services, logger: logger)
        try? await upstream.http.shutdown()
    }

    /// Ready when the registry answers `GET /v2/` (200, or 401 when it wants logins).
    static func registryReadiness(_ upstream: RegistryUpstream) async -> Readiness {
        do {
            let response = try await upstream.send(.get, "/v2/", clientHeaders: [:])
            _ = try? await response.body.collect(upTo: 64 << 10)
            return [200, 401].contains(Int(response.status.code)) ? .ready : .notReady("the registry answers /v2/ with \(response.status.code)")
        } catch {
            return .notReady("\(error)")
        }
    }
}

import Foundation
import Synchronization
import Hummingbird
import Logging
import ServerSupport
import ServiceLifecycle
import SpeedyClients
import SpeedyCore

/// The agent's part in the swarm: its id and signer, its tracker client and announcer, the
/// index of cached blobs' chunk counts, and the peer port where other agents read its chunks.
struct SwarmMembership: Sendable {
    let configuration: SwarmConfiguration
    let signer: PeerRequestSigner
    let tracker: TrackerClient
    let announcer: SwarmAnnouncer
    let index: SwarmIndex
    let served = PeerServeRoutes.ServedBytes()
    let cache: BlobCache
    let metrics: PeerMetrics

    /// The swarm of `configuration`, under a new random agent id.
    init(configuration: SwarmConfiguration, transport: ClusterTransport, cache: BlobCache, metrics: PeerMetrics, logger: Logger) {
        self.configuration = configuration
        let id = String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))
        signer = PeerRequestSigner(key: PeerKey(secret: configuration.secret), agent: id)
        tracker = TrackerClient(baseURL: configuration.trackerURL, signer: signer, transport: transport)
        let served = self.served
        announcer = SwarmAnnouncer(
            tracker: tracker, address: configuration.advertiseURL, served: { served.total.load(ordering: .relaxed) }, logger: logger)
        index = SwarmIndex(directory: cache.directory, logger: logger)
        self.cache = cache
        self.metrics = metrics
    }

    /// The announcer and the peer port, as services of the agent's service group.
    func services(downloads: SwarmDownloads, logger: Logger) -> [any Service] {
        let cache = self.cache
        let index = self.index
        announcer.source { only in Self.holdings(only, downloads: downloads, cache: cache, index: index) }
        let router = Router(context: SpeedyRequestContext.self)
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger) { $0.uri.path.hasPrefix("/v1/peer/blobs/") ? "/v1/peer/blobs/<digest>" : nil })
        router.middlewares.add(PeerSignatureMiddleware(key: signer.key, logger: logger))
        PeerServeRoutes(
            downloads: downloads, cache: cache, pacer: UploadPacer(bytesPerSecond: configuration.uploadBytesPerSecond),
            chunkWait: configuration.chunkWait, served: served, metrics: metrics, logger: logger
        ).register(on: router)
        HealthRoutes.register(on: router) { .ready }
        let listen = configuration.peerListen
        let app = Application(
            router: router, configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "speedy-peer"),
            onServerRunning: { _ in logger.notice("speedy peer: serving chunks to other agents on \(listen), announced as \(configuration.advertiseURL)") },
            logger: logger)
        return [announcer, app]
    }

    /// What the agent holds of `only` (every blob when nil): downloads in progress by their
    /// chunks, cached blobs whole; a blob it no longer holds with an empty bitfield.
    static func holdings(_ only: Set<Digest>?, downloads: SwarmDownloads, cache: BlobCache, index: SwarmIndex) -> [SwarmAnnounce.Holding] {
        var holdings: [Digest: SwarmAnnounce.Holding] = [:]
        var gone: [Digest] = []
        for (digest, chunks) in index.all() where only?.contains(digest) ?? true {
            guard access(cache.path(of: digest), F_OK) == 0 else {
                gone.append(digest)
                continue
            }
            let all = ChunkBitfield.full(count: chunks)
            holdings[digest] = SwarmAnnounce.Holding(digest: digest.description, have: all, held: all)
        }
        index.forget(gone)
        for partial in downloads.inProgress() where only?.contains(partial.digest) ?? true && holdings[partial.digest] == nil {
            holdings[partial.digest] = SwarmAnnounce.Holding(digest: partial.digest.description, have: partial.announced(), held: partial.inHand())
        }
        for digest in only ?? [] where holdings[digest] == nil {
            holdings[digest] = SwarmAnnounce.Holding(digest: digest.description, have: ChunkBitfield(count: 0))
        }
        return Array(holdings.values)
    }
}

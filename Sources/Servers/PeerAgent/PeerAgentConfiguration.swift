import SpeedyCore

/// What `speedy peer` is told at start-up.
public struct PeerAgentConfiguration: Sendable {
    /// Where the agent listens for its host's clients (loopback normally).
    public var listen: HostPort
    /// Base URL of the registry (an imageserver, or a load balancer in front of several).
    public var registryURL: String
    /// The cache directory: verified blobs under `blobs/`, downloads in progress under `tmp/`.
    public var cacheDirectory: String
    /// The most bytes the cache keeps; the least recently used blobs go first.
    public var cacheBytes: UInt64
    /// PEM file of the CA trusted for the registry's and the chunkservers' TLS (nil: the system's roots).
    public var caFile: String?
    /// Read every blob through the registry's blob GET instead of as chunks from the
    /// chunkservers (a host that cannot reach them); cached and checked the same way.
    public var blobsFromRegistry = false
    /// Chunks fetched ahead of the one being sent to the client.
    public var chunkWindow: Int = 4
    /// How long a chunkserver or peer may take to answer a chunk request's head, and how long
    /// its body may stall, before the next source is tried.
    public var chunkTimeout: Duration = .seconds(5)
    /// How long the registry may take to answer a request's head.
    public var registryTimeout: Duration = .seconds(60)
    /// How long a body from the registry may stall before the transfer fails.
    public var readIdleTimeout: Duration = .seconds(30)
    /// How long a client may take (or send) next to nothing mid-request before its connection is
    /// closed, so a download nobody reads does not hold chunks and a fetch forever; a connection
    /// between requests, or with a request head half sent, is closed after as long.
    public var clientIdleTimeout: Duration = .seconds(30)
    /// Fetch chunks from other agents too (nil: from the chunkservers and the registry alone).
    public var swarm: SwarmConfiguration?

    /// Creates a configuration with the defaults for everything but the addresses and the cache.
    public init(listen: HostPort, registryURL: String, cacheDirectory: String, cacheBytes: UInt64, caFile: String? = nil) {
        self.listen = listen
        self.registryURL = registryURL
        self.cacheDirectory = cacheDirectory
        self.cacheBytes = cacheBytes
        self.caFile = caFile
    }
}

/// How an agent joins the swarm of other agents (docs/peer.md).
public struct SwarmConfiguration: Sendable {
    /// Base URL of the tracker (`speedy tracker`).
    public var trackerURL: String
    /// Where this agent listens for other agents' chunk requests.
    public var peerListen: HostPort
    /// The base URL other agents reach `peerListen` at, as announced to the tracker.
    public var advertiseURL: String
    /// The peer secret every agent of the swarm and the tracker share.
    public var secret: ClusterSecret
    /// The most bytes per second sent to other agents (nil: no bound).
    public var uploadBytesPerSecond: UInt64?
    /// How often a download asks the tracker again who holds its blob.
    public var lookupInterval: Duration = .milliseconds(500)
    /// How long a peer's request for a chunk this agent is still receiving may wait for its next
    /// bytes: a claimed chunk is on its way, and waiting for it beats a second read from the
    /// chunkservers.
    public var chunkWait: Duration = .seconds(10)

    /// Creates a swarm configuration.
    public init(trackerURL: String, peerListen: HostPort, advertiseURL: String, secret: ClusterSecret, uploadBytesPerSecond: UInt64?) {
        self.trackerURL = trackerURL
        self.peerListen = peerListen
        self.advertiseURL = advertiseURL
        self.secret = secret
        self.uploadBytesPerSecond = uploadBytesPerSecond
    }
}

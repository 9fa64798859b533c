import ChunkStorage
import ServerSupport
import SpeedyCore

/// Everything `speedy chunkserver` needs to run.
public struct ChunkServerConfiguration: Sendable {
    /// Where the HTTP API listens (port 0: any free port).
    public var listen: HostPort
    /// Base URL of the chunkmaster.
    public var masterURL: String
    /// The group this server is a member of; with `spare`, ignored (a spare waits in group 0).
    public var group: UInt32
    /// A spare: it belongs to no group until the master gives it one to replace a dead member.
    public var spare = false
    /// Stable id; nil means the one kept in the data directory (made on first start).
    public var serverId: String?
    /// How often to send a heartbeat.
    public var heartbeatInterval: Duration
    /// How often to save the index checkpoint when something changed.
    public var checkpointInterval: Duration
    /// The storage engine's settings (its directory is the data directory).
    public var store: VolumeStoreConfiguration
    /// The cluster secret and TLS.
    public var security: RoleSecurity
    /// The address told to the master, when it differs from `listen` (a wildcard or NAT).
    public var advertise: HostPort?
    /// The failure zone (`--zone`, a ``FailureZone`` name) told to the master; nil: the host of
    /// the advertised address counts, so chunkservers on one machine share a zone.
    public var zone: String?
    /// A sealed volume whose live records fill less than this fraction of it is compacted.
    public var compactThreshold: Double = 0.5
    /// Bytes per second a compaction copies at most (0: no limit), so pulls keep their speed.
    public var compactRate: Int = 32 << 20
    /// How often volumes are checked for compaction (nil: only when asked, `POST /v1/compact`).
    public var compactInterval: Duration? = .seconds(60)
    /// Bytes per second the background scrub reads at most while clients leave the disk alone
    /// (0: no scrubbing). A pass that would miss `scrubEvery` goes faster.
    public var scrubRate: Int = 32 << 20
    /// A scrub pass starts this long after the previous one started (HDFS's scan period).
    public var scrubEvery: Duration = .seconds(7 * 86_400)

    /// Creates a configuration.
    public init(
        listen: HostPort, masterURL: String, group: UInt32, serverId: String? = nil,
        heartbeatInterval: Duration = .seconds(1), checkpointInterval: Duration = .seconds(30),
        store: VolumeStoreConfiguration, security: RoleSecurity, advertise: HostPort? = nil
    ) {
        self.security = security
        self.advertise = advertise
        self.listen = listen
        self.masterURL = masterURL
        self.group = group
        self.serverId = serverId
        self.heartbeatInterval = heartbeatInterval
        self.checkpointInterval = checkpointInterval
        self.store = store
    }
}

import ServerSupport
import SpeedyClients
import SpeedyCore

/// What `speedy tracker` runs with.
public struct TrackerConfiguration: Sendable {
    /// Where agents reach the tracker.
    public var listen: HostPort
    /// The swarm's peer secret: agents sign every request with it (``PeerKey``).
    public var peerSecret: ClusterSecret
    /// How often agents send a full announce; silence for three intervals forgets an agent.
    public var announceInterval: Duration
    /// The master to heartbeat to (so `chunktool status` and the console show the swarm); nil: none.
    public var masterURL: String?
    /// The id reported to the master; nil: `tracker@HOST:PORT`.
    public var id: String?
    /// The port's TLS, the cluster secret `/metrics` and the master ask for, the CA for the master's TLS.
    public var security: RoleSecurity
    /// Bounds of the swarm table.
    public var limits = SwarmTable.Limits()

    /// A configuration with the given essentials and no master.
    public init(listen: HostPort, peerSecret: ClusterSecret, announceInterval: Duration, security: RoleSecurity) {
        self.listen = listen
        self.peerSecret = peerSecret
        self.announceInterval = announceInterval
        self.security = security
    }
}

/// The tracker's wire types (`speedy tracker`, docs/peer.md): node agents announce the chunks
/// they hold and ask which other agents hold a blob's chunks. Every request is signed with the
/// peer secret (``PeerSignature`` in ServerSupport).
///
/// - `POST /v1/announce` with a ``SwarmAnnounce``: answered with a ``SwarmAnnounceReply``.
/// - `GET /v1/peers/<digest>?agent=<id>`: a ``SwarmPeers``, the caller left out.
/// - `POST /v1/reports` with a ``SwarmReport``: 204.
/// - `GET /v1/swarm`: a ``SwarmSummary``, for the console and scripts.
public enum Swarm {
    /// The most blobs one announce may carry.
    public static let maxBlobsPerAnnounce = 4096
    /// The most peers one lookup answers with.
    public static let maxPeersPerLookup = 64
}

/// What an agent tells the tracker: where peers reach it and which chunks of which blobs it holds.
public struct SwarmAnnounce: Sendable, Equatable, Codable {
    /// The agent's id: random, chosen at start.
    public var agent: String
    /// The base URL other agents fetch chunks from, `http://host:port`.
    public var address: String
    /// True: `blobs` is everything the agent holds and replaces what it announced before (sent at
    /// start and every ``SwarmAnnounceReply/intervalSeconds``, so a restarted tracker learns the
    /// swarm back). False: `blobs` updates only the blobs it names.
    public var full: Bool
    /// The blobs announced; one whose ``Holding/have`` holds nothing is no longer held.
    public var blobs: [Holding]
    /// Bytes this agent has sent to other agents since it started (the console's bytes/s).
    public var servedBytes: UInt64

    /// Creates an announce.
    public init(agent: String, address: String, full: Bool, blobs: [Holding], servedBytes: UInt64) {
        self.agent = agent
        self.address = address
        self.full = full
        self.blobs = blobs
        self.servedBytes = servedBytes
    }

    /// One blob an agent holds all or part of.
    public struct Holding: Sendable, Equatable, Codable {
        /// The blob's digest, `sha256:…`.
        public var digest: String
        /// The chunks held or claimed (on their way), by their index in the blob's chunk map.
        public var have: ChunkBitfield
        /// Of those, the chunks in hand: an agent asked for one of these answers at once and
        /// waits on no one. Absent: the agent does not say (read `have` as claims).
        public var held: ChunkBitfield?

        /// Creates a holding.
        public init(digest: String, have: ChunkBitfield, held: ChunkBitfield? = nil) {
            self.digest = digest
            self.have = have
            self.held = held
        }
    }
}

/// An agent telling the tracker that a peer sent it a chunk that failed the chunk map's length or
/// CRC. Two agents reporting the same peer keep it out of every lookup for a while
/// (``SwarmSummary/quarantined``); one report alone does nothing, so one agent cannot shut out
/// another.
public struct SwarmReport: Sendable, Equatable, Codable {
    /// The reporting agent (the request's signer).
    public var agent: String
    /// The agent that sent the bad chunk.
    public var accused: String
    /// The blob, `sha256:…`, and the chunk's index in its chunk map.
    public var digest: String
    public var index: Int

    /// Creates a report.
    public init(agent: String, accused: String, digest: String, index: Int) {
        self.agent = agent
        self.accused = accused
        self.digest = digest
        self.index = index
    }
}

/// The tracker's answer to an announce.
public struct SwarmAnnounceReply: Sendable, Equatable, Codable {
    /// How often the agent must send a full announce; the tracker forgets an agent that has not
    /// announced for three intervals.
    public var intervalSeconds: Int

    /// Creates a reply.
    public init(intervalSeconds: Int) { self.intervalSeconds = intervalSeconds }
}

/// The agents that hold chunks of one blob.
public struct SwarmPeers: Sendable, Equatable, Codable {
    /// The blob's digest.
    public var digest: String
    /// At most ``Swarm/maxPeersPerLookup`` agents, in random order.
    public var peers: [Peer]
    /// When the caller joined the blob's swarm (``Peer/joined``), if it holds chunks of it.
    public var callerJoined: UInt64?

    /// Creates a lookup answer.
    public init(digest: String, peers: [Peer], callerJoined: UInt64? = nil) {
        self.digest = digest
        self.peers = peers
        self.callerJoined = callerJoined
    }

    /// One agent holding chunks of the blob.
    public struct Peer: Sendable, Equatable, Codable {
        /// The agent's id.
        public var agent: String
        /// Its base URL for chunk requests.
        public var address: String
        /// The chunks it holds or claimed.
        public var have: ChunkBitfield
        /// Of those, the chunks in hand (see ``SwarmAnnounce/Holding/held``), when it said.
        public var held: ChunkBitfield?
        /// The order agents joined the blob's swarm in, as this tracker saw their first announce
        /// of it: lower joined first. Every agent reads the same order, so an agent that waits
        /// only on agents that joined before it can never wait in a circle. Absent from a
        /// tracker that does not keep it.
        public var joined: UInt64?

        /// Creates a peer.
        public init(agent: String, address: String, have: ChunkBitfield, held: ChunkBitfield? = nil, joined: UInt64? = nil) {
            self.agent = agent
            self.address = address
            self.have = have
            self.held = held
            self.joined = joined
        }
    }
}

/// The swarm at a glance.
public struct SwarmSummary: Sendable, Equatable, Codable {
    /// Agents that announced within three intervals.
    public var agents: Int
    /// Distinct blobs they hold chunks of.
    public var blobs: Int
    /// Bytes the live agents have sent to other agents, summed.
    public var servedBytes: UInt64
    /// Bytes per second the agents sent to each other over the last minute or so.
    public var servedBytesPerSecond: Double
    /// Announces and lookups the tracker answered per second over the last minute or so.
    public var announcesPerSecond: Double
    public var lookupsPerSecond: Double
    /// Agents left out of lookups now, reported by two or more others for bad chunks
    /// (``SwarmReport``). Absent from a tracker that does not keep it.
    public var quarantined: [String]?

    /// Creates a summary.
    public init(
        agents: Int, blobs: Int, servedBytes: UInt64, servedBytesPerSecond: Double, announcesPerSecond: Double, lookupsPerSecond: Double,
        quarantined: [String]? = nil
    ) {
        self.quarantined = quarantined
        self.agents = agents
        self.blobs = blobs
        self.servedBytes = servedBytes
        self.servedBytesPerSecond = servedBytesPerSecond
        self.announcesPerSecond = announcesPerSecond
        self.lookupsPerSecond = lookupsPerSecond
    }
}

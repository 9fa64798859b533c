import SpeedyCore
import Synchronization

/// Why the table refused an announce.
public enum SwarmTableError: Error, Sendable, Equatable {
    /// A new agent while the table holds ``SwarmTable/Limits/agents`` live ones already.
    case full(agents: Int)
    /// The agent would hold more than ``SwarmTable/Limits/holdingsPerAgent`` blobs.
    case tooManyHoldings(limit: Int)
}

/// The tracker's whole state: which agent holds which chunks of which blob, in memory only. A
/// restarted tracker starts empty and is whole again one announce interval later, because every
/// agent sends a full announce at start and every interval (``SwarmAnnounce/full``).
///
/// Every operation is short and never waits, so one `Mutex` guards it all (docs/architecture.md).
/// Agents silent for three intervals are forgotten: swept at most once a second on access, and
/// never handed out by a lookup in between.
public final class SwarmTable: Sendable {
    /// Bounds that keep one misbehaving agent, or a flood of made-up ones, from exhausting memory.
    public struct Limits: Sendable {
        /// Live agents kept at most.
        public var agents = 100_000
        /// Blobs one agent may hold at most.
        public var holdingsPerAgent = 65_536

        /// The default bounds.
        public init() {}
    }

    /// One agent as last announced.
    struct Agent: Sendable {
        var address: String
        var holdings: [Digest: ChunkBitfield] = [:]
        var lastSeenMs: Int64
        var servedBytes: UInt64 = 0
    }

    struct State: Sendable {
        var agents: [String: Agent] = [:]
        var holders: [Digest: HolderSet] = [:]
        var servedBytes: UInt64 = 0
        var rates: SwarmRates
        var lastSweepMs: Int64
        var generator = SystemRandomNumberGenerator()
    }

    /// How often agents must send a full announce.
    public let interval: Duration
    /// The bounds in force.
    public let limits: Limits
    private let now: @Sendable () -> Int64
    private let state: Mutex<State>

    /// An empty table.
    /// - Parameters:
    ///   - interval: the announce interval agents are told; silence for three of them forgets an agent.
    ///   - now: monotonic milliseconds (tests move time by hand).
    public init(interval: Duration, limits: Limits = Limits(), now: @escaping @Sendable () -> Int64 = SwarmTable.monotonicMs) {
        self.interval = interval
        self.limits = limits
        self.now = now
        let start = now()
        state = Mutex(State(rates: SwarmRates(startMs: start), lastSweepMs: start))
    }

    /// Milliseconds on a clock that never goes back, counted from the first call.
    public static func monotonicMs() -> Int64 { (ContinuousClock.now - processStart).milliseconds }
    private static let processStart = ContinuousClock.now

    /// How long an agent may stay silent before it is forgotten.
    public var expiryMs: Int64 { 3 * interval.milliseconds }

    /// Takes an announce whose fields were checked already: a full one replaces what `agent`
    /// held, a partial one updates the blobs it names, and a blob with no chunk held is dropped.
    public func announce(agent: String, address: String, full: Bool, blobs: [Digest: ChunkBitfield], servedBytes: UInt64) throws(SwarmTableError) {
        let nowMs = now()
        try state.withLock { (state: inout State) throws(SwarmTableError) in
            sweepIfDue(&state, nowMs: nowMs)
            let known = state.agents[agent]
            if known == nil, state.agents.count >= limits.agents { throw .full(agents: limits.agents) }
            let current = known ?? Agent(address: address, lastSeenMs: nowMs)
            guard Self.holdingCount(after: blobs, full: full, on: current) <= limits.holdingsPerAgent else {
                throw .tooManyHoldings(limit: limits.holdingsPerAgent)
            }
            var entry = current
            if full {
                for digest in entry.holdings.keys where blobs[digest].map({ $0.held == 0 }) ?? true {
                    Self.unindex(agent, digest, &state)
                }
                entry.holdings = [:]
            }
            for (digest, have) in blobs {
                if have.held == 0 {
                    if entry.holdings.removeValue(forKey: digest) != nil { Self.unindex(agent, digest, &state) }
                } else {
                    entry.holdings[digest] = have
                    state.holders[digest, default: HolderSet()].insert(agent)
                }
            }
            // Counters only grow while the agent runs; a smaller one is not growth.
            let growth = known != nil && servedBytes > current.servedBytes ? servedBytes - current.servedBytes : 0
            state.servedBytes = state.servedBytes - current.servedBytes + servedBytes
            (entry.address, entry.lastSeenMs, entry.servedBytes) = (address, nowMs, servedBytes)
            state.agents[agent] = entry
            state.rates.record(nowMs: nowMs, announces: 1, servedBytes: growth)
        }
    }

    /// How many blobs an agent holding `agent`'s blobs would hold after `blobs` were applied.
    private static func holdingCount(after blobs: [Digest: ChunkBitfield], full: Bool, on agent: Agent) -> Int {
        if full { return blobs.values.count { $0.held > 0 } }
        var count = agent.holdings.count
        for (digest, have) in blobs {
            let held = agent.holdings[digest] != nil
            if have.held == 0, held { count -= 1 } else if have.held > 0, !held { count += 1 }
        }
        return count
    }

    private static func unindex(_ agent: String, _ digest: Digest, _ state: inout State) {
        state.holders[digest]?.remove(agent)
        if state.holders[digest]?.isEmpty == true { state.holders[digest] = nil }
    }

    /// At most `limit` live agents other than `caller` that hold chunks of `digest`, in random
    /// order, each with what it holds.
    public func peers(of digest: Digest, caller: String, limit: Int = Swarm.maxPeersPerLookup) -> [SwarmPeers.Peer] {
        let nowMs = now()
        let oldest = nowMs - expiryMs
        return state.withLock { state in
            sweepIfDue(&state, nowMs: nowMs)
            state.rates.record(nowMs: nowMs, lookups: 1)
            guard let holders = state.holders[digest] else { return [] }
            let agents = state.agents
            let chosen = holders.sample(limit, using: &state.generator) { id in
                id != caller && (agents[id]?.lastSeenMs ?? .min) >= oldest
            }
            return chosen.compactMap { id in
                guard let agent = agents[id], let have = agent.holdings[digest] else { return nil }
                return SwarmPeers.Peer(agent: id, address: agent.address, have: have)
            }
        }
    }

    /// The swarm at a glance: live agents, blobs held, bytes served and the rates of the last minute.
    public func summary() -> SwarmSummary {
        let nowMs = now()
        return state.withLock { state in
            sweepIfDue(&state, nowMs: nowMs)
            let rates = state.rates.perSecond(nowMs: nowMs)
            return SwarmSummary(
                agents: state.agents.count, blobs: state.holders.count, servedBytes: state.servedBytes,
                servedBytesPerSecond: rates.servedBytes, announcesPerSecond: rates.announces, lookupsPerSecond: rates.lookups)
        }
    }

    /// Forgets agents silent for three intervals, at most once a second: a sweep walks every
    /// agent, which under a lookup storm would otherwise cost more than the lookups.
    private func sweepIfDue(_ state: inout State, nowMs: Int64) {
        guard nowMs - state.lastSweepMs >= 1000 else { return }
        state.lastSweepMs = nowMs
        let oldest = nowMs - expiryMs
        let silent = state.agents.filter { $0.value.lastSeenMs < oldest }
        for (id, agent) in silent {
            for digest in agent.holdings.keys { Self.unindex(id, digest, &state) }
            state.servedBytes -= agent.servedBytes
            state.agents[id] = nil
        }
    }
}

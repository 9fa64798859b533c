import SpeedyCore
import Synchronization

/// Why the table refused an announce.
public enum SwarmTableError: Error, Sendable, Equatable {
    /// A new agent while the table holds ``SwarmTable/Limits/agents`` live ones already, or an
    /// announce that would pass ``SwarmTable/Limits/bitfieldBytes``; the text says which.
    case full(String)
    /// The agent would hold more than ``SwarmTable/Limits/holdingsPerAgent`` blobs.
    case tooManyHoldings(limit: Int)
    /// The agent's bitfields would take more than ``SwarmTable/Limits/bitfieldBytesPerAgent``.
    case bitfieldsTooLarge(limit: Int)
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
        /// Bytes of bitfields one agent may have at the tracker: a bitfield of a 4 TiB blob is
        /// 128 KiB, so a count of holdings alone does not bound memory.
        public var bitfieldBytesPerAgent = 16 << 20
        /// Bytes of bitfields of all agents together.
        public var bitfieldBytes = 2 << 30
        /// Agents with reports against them kept at most (``SwarmReport``).
        public var accused = 10_000

        /// The default bounds.
        public init() {}
    }

    /// One agent as last announced.
    struct Agent: Sendable {
        var address: String
        var holdings: [Digest: ChunkBitfield] = [:]
        /// Of the holdings, the chunks in hand, for the blobs the agent said.
        var inHand: [Digest: ChunkBitfield] = [:]
        /// When it joined each blob's swarm (``SwarmPeers/Peer/joined``).
        var joined: [Digest: UInt64] = [:]
        var lastSeenMs: Int64
        var servedBytes: UInt64 = 0
        /// Bytes of its bitfields, what its holdings cost beyond their count.
        var bitfieldBytes = 0
    }

    struct State: Sendable {
        var agents: [String: Agent] = [:]
        var holders: [Digest: HolderSet] = [:]
        var servedBytes: UInt64 = 0
        var bitfieldBytes = 0
        var rates: SwarmRates
        var lastSweepMs: Int64
        /// The last ``SwarmPeers/Peer/joined`` handed out.
        var lastJoined: UInt64 = 0
        /// Reports of bad chunks within ``SwarmTable/reportWindowMs``: accused → reporter → when.
        var reports: [String: [String: Int64]] = [:]
        /// Agents left out of lookups, until when.
        var quarantine: [String: Int64] = [:]
        var generator = SystemRandomNumberGenerator()
    }

    /// How many distinct agents must report one peer before it is left out of lookups.
    public static let reportsToQuarantine = 2
    /// How long a report counts, and how long a quarantine lasts.
    public static let reportWindowMs: Int64 = 10 * 60_000
    public static let quarantineMs: Int64 = 10 * 60_000
    /// Reporters kept per accused agent.
    static let reportersKept = 16

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
    /// `held` gives, for some of the blobs, the chunks in hand (a subset of the blob's bitfield
    /// in `blobs`, checked by the caller).
    public func announce(
        agent: String, address: String, full: Bool, blobs: [Digest: ChunkBitfield], held: [Digest: ChunkBitfield] = [:], servedBytes: UInt64
    ) throws(SwarmTableError) {
        let nowMs = now()
        try state.withLock { (state: inout State) throws(SwarmTableError) in
            sweepIfDue(&state, nowMs: nowMs)
            let after = try admit(agent, blobs, held: held, full: full, in: state)
            let isNew = state.agents.index(forKey: agent) == nil
            // Out of the table while it changes, so its holdings are changed in place, not copied.
            var entry = state.agents.removeValue(forKey: agent) ?? Agent(address: address, lastSeenMs: nowMs)
            Self.apply(blobs, full: full, as: agent, to: &entry.holdings, index: &state.holders)
            if full { entry.inHand = [:] }
            for (digest, have) in blobs { entry.inHand[digest] = have.held == 0 ? nil : held[digest] }
            Self.join(blobs, full: full, &entry, lastJoined: &state.lastJoined)
            // Counters only grow while the agent runs; a smaller one is not growth.
            let growth = !isNew && servedBytes > entry.servedBytes ? servedBytes - entry.servedBytes : 0
            state.servedBytes = state.servedBytes - entry.servedBytes + servedBytes
            state.bitfieldBytes = state.bitfieldBytes - entry.bitfieldBytes + after.bytes
            (entry.address, entry.lastSeenMs, entry.servedBytes, entry.bitfieldBytes) = (address, nowMs, servedBytes, after.bytes)
            state.agents[agent] = entry
            state.rates.record(nowMs: nowMs, announces: 1, servedBytes: growth)
        }
    }

    /// Numbers the blobs `entry` holds now and did not before, in the order announces arrive,
    /// and forgets those it holds no longer.
    private static func join(_ blobs: [Digest: ChunkBitfield], full: Bool, _ entry: inout Agent, lastJoined: inout UInt64) {
        if full { entry.joined = entry.joined.filter { entry.holdings[$0.key] != nil } }
        for (digest, have) in blobs {
            if have.held == 0 {
                entry.joined[digest] = nil
            } else if entry.joined[digest] == nil {
                lastJoined += 1
                entry.joined[digest] = lastJoined
            }
        }
    }

    /// What an agent would hold after an announce: blobs, and bytes of bitfields.
    struct Footprint: Equatable {
        var holdings = 0
        var bytes = 0
    }

    /// What `agent` would hold after the announce, once it is within every bound.
    private func admit(_ agent: String, _ blobs: [Digest: ChunkBitfield], held: [Digest: ChunkBitfield], full: Bool, in state: State) throws(SwarmTableError) -> Footprint {
        let known = state.agents[agent]
        if known == nil, state.agents.count >= limits.agents { throw .full("the tracker keeps at most \(limits.agents) agents") }
        let after = Self.footprint(after: blobs, held: held, full: full, on: known)
        guard after.holdings <= limits.holdingsPerAgent else { throw .tooManyHoldings(limit: limits.holdingsPerAgent) }
        guard after.bytes <= limits.bitfieldBytesPerAgent else { throw .bitfieldsTooLarge(limit: limits.bitfieldBytesPerAgent) }
        guard state.bitfieldBytes - (known?.bitfieldBytes ?? 0) + after.bytes <= limits.bitfieldBytes else {
            throw .full("the tracker keeps at most \(limits.bitfieldBytes) bytes of bitfields")
        }
        return after
    }

    /// Changes `holdings` (and the index of holders) as the announce says.
    private static func apply(
        _ blobs: [Digest: ChunkBitfield], full: Bool, as agent: String, to holdings: inout [Digest: ChunkBitfield], index: inout [Digest: HolderSet]
    ) {
        if full {
            for digest in holdings.keys where blobs[digest].map({ $0.held == 0 }) ?? true { unindex(agent, digest, &index) }
            holdings = [:]
        }
        for (digest, have) in blobs {
            if have.held == 0 {
                if holdings.removeValue(forKey: digest) != nil { unindex(agent, digest, &index) }
            } else {
                holdings[digest] = have
                index[digest, default: HolderSet()].insert(agent)
            }
        }
    }

    /// The holdings and bitfield bytes of `agent` (nil: a new one) after `blobs` were applied.
    private static func footprint(after blobs: [Digest: ChunkBitfield], held: [Digest: ChunkBitfield], full: Bool, on agent: Agent?) -> Footprint {
        var result = full ? Footprint() : Footprint(holdings: agent?.holdings.count ?? 0, bytes: agent?.bitfieldBytes ?? 0)
        for (digest, have) in blobs {
            let before = full ? nil : agent?.holdings[digest]
            if let before {
                result.holdings -= 1
                // A blob's bitfields: the holding's, and as long again for the chunks in hand.
                result.bytes -= before.byteCount * (agent?.inHand[digest] == nil ? 1 : 2)
            }
            if have.held > 0 {
                result.holdings += 1
                result.bytes += have.byteCount * (held[digest] == nil ? 1 : 2)
            }
        }
        return result
    }

    private static func unindex(_ agent: String, _ digest: Digest, _ index: inout [Digest: HolderSet]) {
        index[digest]?.remove(agent)
        if index[digest]?.isEmpty == true { index[digest] = nil }
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
            let quarantine = state.quarantine
            let chosen = holders.sample(limit, using: &state.generator) { id in
                id != caller && (agents[id]?.lastSeenMs ?? .min) >= oldest && (quarantine[id] ?? .min) <= nowMs
            }
            return chosen.compactMap { id in
                guard let agent = agents[id], let have = agent.holdings[digest] else { return nil }
                return SwarmPeers.Peer(agent: id, address: agent.address, have: have, held: agent.inHand[digest], joined: agent.joined[digest])
            }
        }
    }

    /// Takes `reporter`'s word that `accused` sent it a bad chunk; true when that makes
    /// ``reportsToQuarantine`` distinct reporters within ``reportWindowMs``, and `accused` is
    /// left out of every lookup for ``quarantineMs`` from now.
    public func report(by reporter: String, accused: String) -> Bool {
        guard reporter != accused else { return false }
        let nowMs = now()
        return state.withLock { state in
            sweepIfDue(&state, nowMs: nowMs)
            if let until = state.quarantine[accused], until > nowMs { return false }
            guard state.reports[accused] != nil || state.reports.count < limits.accused else { return false }
            var reporters = state.reports[accused, default: [:]].filter { nowMs - $0.value < Self.reportWindowMs }
            if reporters[reporter] != nil || reporters.count < Self.reportersKept { reporters[reporter] = nowMs }
            guard reporters.count >= Self.reportsToQuarantine else {
                state.reports[accused] = reporters
                return false
            }
            state.reports[accused] = nil
            state.quarantine[accused] = nowMs + Self.quarantineMs
            return true
        }
    }

    /// When `agent` joined the swarm of `digest` (``SwarmPeers/Peer/joined``); nil when it holds
    /// nothing of it.
    public func joined(_ digest: Digest, by agent: String) -> UInt64? {
        state.withLock { $0.agents[agent]?.joined[digest] }
    }

    /// The swarm at a glance: live agents, blobs held, bytes served and the rates of the last minute.
    public func summary() -> SwarmSummary {
        let nowMs = now()
        return state.withLock { state in
            sweepIfDue(&state, nowMs: nowMs)
            let rates = state.rates.perSecond(nowMs: nowMs)
            return SwarmSummary(
                agents: state.agents.count, blobs: state.holders.count, servedBytes: state.servedBytes,
                servedBytesPerSecond: rates.servedBytes, announcesPerSecond: rates.announces, lookupsPerSecond: rates.lookups,
                quarantined: state.quarantine.filter { $0.value > nowMs }.keys.sorted())
        }
    }

    /// Forgets agents silent for three intervals, at most once a second: a sweep walks every
    /// agent, which under a lookup storm would otherwise cost more than the lookups.
    private func sweepIfDue(_ state: inout State, nowMs: Int64) {
        guard nowMs - state.lastSweepMs >= 1000 else { return }
        state.lastSweepMs = nowMs
        let oldest = nowMs - expiryMs
        state.quarantine = state.quarantine.filter { $0.value > nowMs }
        state.reports = state.reports.filter { $0.value.values.contains { nowMs - $0 < Self.reportWindowMs } }
        let silent = state.agents.filter { $0.value.lastSeenMs < oldest }
        for (id, agent) in silent {
            for digest in agent.holdings.keys { Self.unindex(id, digest, &state.holders) }
            state.servedBytes -= agent.servedBytes
            state.bitfieldBytes -= agent.bitfieldBytes
            state.agents[id] = nil
        }
    }
}

extension ChunkBitfield {
    /// Bytes the bitfield takes: what a holding costs the tracker's memory.
    fileprivate var byteCount: Int { (count + 7) / 8 }
}

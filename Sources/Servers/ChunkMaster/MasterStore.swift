import SpeedyCore

/// Where a chunkmaster keeps what must outlive it: groups, servers and operators' settings, the
/// file id high-water mark, the event log, and, when several masters share one database, which
/// of them leads. Everything live is cached in memory (``ClusterMap``); this is what a restarted
/// master, or a standby taking over, reads back.
///
/// ``SQLiteMasterStore`` is the embedded default (one master); ``PostgresMasterStore`` lets
/// several masters share one database, one leading at a time. Both pass one conformance suite
/// (`MasterStoreConformanceTests`).
public protocol MasterStore: Sendable {
    /// Every known server, removed ones included, ordered by id.
    func servers() async throws -> [StoredServer]

    /// Every group not removed, in order.
    func groups() async throws -> [UInt32]

    /// The groups being drained (not removed), with when each drain was asked for (wall clock,
    /// milliseconds since the epoch).
    func drainingGroups() async throws -> [UInt32: Int64]

    /// Writes the durable part of `changes` (servers, groups, settings; see
    /// ``ClusterMap/Change/isDurable``) in one transaction: all of them or none. The master calls it
    /// for one set of changes at a time, so the store sees them in the order the map made them.
    ///
    /// With `fence`, the changes are written only while `fence` still holds the leader lease, read
    /// in the same transaction: a master deposed while its change waited cannot write behind the
    /// back of the leader that took over (and reloaded the map).
    /// - Throws: ``MasterStoreError/notLeader(_:)`` when it does not.
    func save(_ changes: [ClusterMap.Change], fence: LeaderTerm?) async throws

    /// Appends one entry to the event log.
    func recordEvent(kind: String, serverId: String?, group: UInt32?, message: String) async throws

    /// Events with an id greater than `after`, oldest first, at most `limit`.
    func events(after: Int64, limit: Int) async throws -> [ClusterEvent]

    /// The `limit` most recent events, newest first.
    func latestEvents(limit: Int) async throws -> [ClusterEvent]

    /// Reserves `count` file ids no caller of any store on this database ever got before, and
    /// raises the high-water mark past them in the same commit: the range is durable before it
    /// is returned, and two reservations never overlap, whichever masters make them.
    ///
    /// With `fence`, the reservation is made only while `fence` still holds the leader lease.
    /// - Throws: ``MasterStoreError/notLeader(_:)`` when it does not.
    func reserveFileIds(count: UInt64, fence: LeaderTerm?) async throws -> Range<UInt64>

    /// Claims or renews the leader lease for `holder` for `ttl`, measured on the database's clock.
    /// The holder renews it and keeps its term (even when it had run out meanwhile, as nobody
    /// else led); another master takes a lease that has run out, with the term one higher.
    /// Returns the outcome; never waits for the lease.
    func claimLeadership(holder: String, url: String, ttl: Duration) async throws -> Leadership

    /// Gives the lease up at once when `holder` holds it, so a standby need not wait for it to
    /// run out (a clean shutdown).
    func resign(holder: String) async throws
}

/// A server as the store remembers it.
public struct StoredServer: Sendable, Equatable {
    public var id: String
    public var group: UInt32
    public var addr: String
    /// The operator's setting, nil when none.
    public var setStatus: ServerStatus?
    /// The replacement it was fenced for, if any.
    public var fencedBy: String?
    /// Removed from the cluster.
    public var retired: Bool

    /// Creates a record.
    public init(id: String, group: UInt32, addr: String, setStatus: ServerStatus? = nil, fencedBy: String? = nil, retired: Bool = false) {
        self.id = id
        self.group = group
        self.addr = addr
        self.setStatus = setStatus
        self.fencedBy = fencedBy
        self.retired = retired
    }
}

/// One leadership: who holds the lease and since which term. Terms only grow; each holder's
/// claim after anyone else's gets a new one.
public struct LeaderTerm: Sendable, Equatable {
    /// The master's id for this process's lifetime.
    public var holder: String
    /// The lease's term.
    public var term: Int64

    /// Creates a term.
    public init(holder: String, term: Int64) {
        self.holder = holder
        self.term = term
    }
}

/// The outcome of a claim of the leader lease.
public enum Leadership: Sendable, Equatable {
    /// The claimant holds the lease in `term`.
    case leader(term: Int64)
    /// Another master holds it; `leaderURL` is where it said clients reach it (nil when the
    /// lease has run out and nobody has taken it yet).
    case standby(leaderURL: String?)
}

/// Why a master store refused.
public enum MasterStoreError: Error, Sendable, CustomStringConvertible {
    /// The caller does not hold the leader lease it named.
    case notLeader(String)
    /// The stored data cannot be used by this build.
    case invalid(String)

    public var description: String {
        switch self {
        case .notLeader(let why): "not the leader: \(why)"
        case .invalid(let why): why
        }
    }
}

import HTTPTypes
import Logging
import ServerSupport
import SpeedyClients
import SpeedyCore
import Synchronization

/// The imageserver's copy of the cluster map, refreshed from the master every second; picks the
/// group for each new chunk and the member for each read.
final class ClusterView: Sendable {
    private struct State {
        var snapshot: ClusterSnapshot?
        /// When `snapshot` came from the master.
        var fetchedAt: ContinuousClock.Instant = .now
        /// Smooth weighted round-robin counters per group.
        var current: [UInt32: Int64] = [:]
        /// Reads in flight per member address, to send the next read to the least busy.
        var readsInFlight: [String: Int] = [:]
        /// The refresh under way, which concurrent callers join rather than each asking the master.
        var refreshing: Task<Void, Never>?
        /// When the last map with a writable group was asked for; nil until one came.
        var lastWritableAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let started = ContinuousClock.now
    private let master: MasterClient
    private let logger: Logger

    init(master: MasterClient, logger: Logger) {
        self.master = master
        self.logger = logger
    }

    /// Fetches a new snapshot; keeps the old one when the master does not answer. Callers that
    /// arrive while a refresh is under way wait for that one.
    func refresh() async {
        let task = state.withLock { s -> Task<Void, Never> in
            if let running = s.refreshing { return running }
            let task = Task { await self.fetch() }
            s.refreshing = task
            return task
        }
        await task.value
        state.withLock { if $0.refreshing == task { $0.refreshing = nil } }
    }

    private func fetch() async {
        // The map is as old as the moment it was asked for, not the moment it arrived.
        let asked = ContinuousClock.now
        do {
            let snapshot = try await master.snapshot()
            state.withLock {
                $0.snapshot = snapshot
                $0.fetchedAt = asked
                if Self.hasWritableGroup(snapshot) { $0.lastWritableAt = asked }
            }
        } catch {
            logger.warning("cluster map refresh failed, keeping the last one: \(error)")
        }
    }

    /// Group `id` as the map says now, if the map is fresh enough to place chunks by (see
    /// ``maxMapAgeForWrites``) and the group is writable.
    func writableGroup(_ id: UInt32) -> GroupSnapshot? {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard now - s.fetchedAt <= Self.maxMapAgeForWrites else { return nil }
            return s.snapshot?.groups.first { $0.id == id && Self.takesNewChunks($0) }
        }
    }

    /// Group `id` if it is writable by a map fresh enough to place chunks by, waiting up to
    /// ``mapWait`` for such a map as ``pickGroup(excluding:)`` does (the master changing hands).
    func writableGroupWaiting(_ id: UInt32) async -> GroupSnapshot? {
        if let group = writableGroup(id) { return group }
        await refresh()
        let deadline = ContinuousClock.now + Self.mapWait
        while writableGroup(id) == nil, shouldWaitForMap, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            await refresh()
        }
        return writableGroup(id)
    }

    /// Whether the map held is too old to place chunks by.
    private var isStale: Bool {
        let now = ContinuousClock.now
        return state.withLock { $0.snapshot != nil && now - $0.fetchedAt > Self.maxMapAgeForWrites }
    }

    /// The current snapshot, fetching one if none was had yet.
    func current() async -> ClusterSnapshot? {
        if let snapshot = state.withLock({ $0.snapshot }) { return snapshot }
        await refresh()
        return state.withLock { $0.snapshot }
    }

    /// The oldest map new chunks may be placed by. A group's members change (a replacement joins
    /// and must get every new chunk; a dead member is fenced), so an imageserver cut off from the
    /// master stops writing after this; `transfer --settle` waits longer than it.
    static let maxMapAgeForWrites: Duration = .seconds(5)

    /// A writable group by smooth weighted round-robin on free space (nginx's algorithm: the
    /// fullest group still gets its share, but no two chunks in a row land on it unless it is the
    /// only one). Nil when no healthy group is left outside `excluding`, even after asking the
    /// master again (the copy may be up to a refresh interval old).
    ///
    /// Three cases wait up to ``mapWait`` for a better map, asking again every 200 ms, rather than
    /// answer 507 at once: right after the imageserver starts (in its first ``startupWindow``, while
    /// no map so far had a writable group: the cluster is starting); while the map is too old to
    /// place chunks by (the master is unreachable, or changing hands: a standby taking over answers
    /// within seconds); and while a fresh map has no writable group at all though one had within
    /// ``blipWindow`` (a new leader showing a member down that has not reported to it yet, a member
    /// restarting). A cluster that has had no writable group for longer answers at once, and so
    /// does a write whose group failed while the map calls it writable.
    func pickGroup(excluding: Set<UInt32>) async -> GroupSnapshot? {
        _ = await current()
        if let group = pickCached(excluding: excluding) { return group }
        await refresh()
        if let group = pickCached(excluding: excluding) { return group }
        let deadline = ContinuousClock.now + Self.mapWait
        while shouldWaitForMap, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(200))
            await refresh()
            if let group = pickCached(excluding: excluding) { return group }
        }
        return nil
    }

    /// Whether a write finding no group should wait for the next map (see ``pickGroup(excluding:)``).
    private var shouldWaitForMap: Bool {
        let now = ContinuousClock.now
        let (startingUp, blip) = state.withLock { s in
            guard let writableAt = s.lastWritableAt else { return (now - started < Self.startupWindow, false) }
            let noneWritable = s.snapshot.map { !Self.hasWritableGroup($0) } ?? false
            return (false, noneWritable && now - writableAt < Self.blipWindow)
        }
        return startingUp || blip || isStale
    }

    private static func hasWritableGroup(_ snapshot: ClusterSnapshot) -> Bool {
        snapshot.groups.contains { takesNewChunks($0) && !$0.members.isEmpty }
    }

    /// Whether new chunks may be placed in `group`: it is writable and not being drained (a
    /// draining group still serves reads, and writes already under way finish).
    private static func takesNewChunks(_ group: GroupSnapshot) -> Bool {
        group.state.isWritable && group.draining != true
    }

    /// How recently a group must have been writable for a map without one to count as a blip.
    static let blipWindow: Duration = .seconds(15)

    /// How long a write waits for a usable map.
    static let mapWait: Duration = .seconds(5)
    /// How long after start a write may wait for a first writable group.
    static let startupWindow: Duration = .seconds(60)

    /// Whether a group takes writes now, by the map (refreshed when stale): what `/readyz` needs.
    func hasWritableGroup() async -> Bool {
        let fresh = state.withLock { ContinuousClock.now - $0.fetchedAt <= Self.maxMapAgeForWrites && $0.snapshot != nil }
        if !fresh { await refresh() }
        return state.withLock { s in
            guard let snapshot = s.snapshot, ContinuousClock.now - s.fetchedAt <= Self.maxMapAgeForWrites else { return false }
            return Self.hasWritableGroup(snapshot)
        }
    }

    private func pickCached(excluding: Set<UInt32>) -> GroupSnapshot? {
        let now = ContinuousClock.now
        return state.withLock { s in
            guard let snapshot = s.snapshot, now - s.fetchedAt <= Self.maxMapAgeForWrites else { return nil }
            let candidates = snapshot.groups.filter { Self.takesNewChunks($0) && !excluding.contains($0.id) && !$0.members.isEmpty }
            guard !candidates.isEmpty else { return nil }
            let weights = candidates.map { max(1, Int64($0.diskFreeBytes >> 20)) }
            let total = weights.reduce(0, +)
            var best = 0
            for (i, group) in candidates.enumerated() {
                s.current[group.id, default: 0] += weights[i]
                if s.current[group.id]! > s.current[candidates[best].id]! { best = i }
            }
            s.current[candidates[best].id]! -= total
            return candidates[best]
        }
    }

    /// Addresses to read `group`'s chunks from, in the order to try them: its readable members,
    /// least busy first, then every other member the map names.
    ///
    /// A pull needs no master: the map's statuses are the master's opinion, and a master that has
    /// just taken over (or lost touch with its servers) may show live members `DOWN` or `INIT`.
    /// Every copy is checked against the blob's CRC before a byte is sent, so asking a member the
    /// map calls absent costs at most a refused connection or a timeout, and only once the
    /// readable ones have failed.
    ///
    /// A map that names the group's members but calls none readable is used as it is, with a
    /// newer one asked for in the background: a master that does not answer must not hold up
    /// every chunk of a pull for its timeout. Only a map that does not know the group waits for
    /// the master.
    func readers(of group: UInt32) async -> [String] {
        guard await current() != nil else { return [] }
        let cached = readersCached(of: group)
        if cached.contains(where: \.readable) { return cached.map(\.addr) }
        if !cached.isEmpty {
            Task { await self.refresh() }
            return cached.map(\.addr)
        }
        await refresh()
        return readersCached(of: group).map(\.addr)
    }

    /// Addresses (`HOST:PORT`) of `group`'s members a client outside the cluster (`speedy peer`)
    /// should read from, best first: the readable ones, least busy first; every member the map
    /// names when it calls none readable (see ``readers(of:)``), with how many of them are
    /// readable (0 then). Empty for a group the map does not know.
    func servingMembers(of group: UInt32) async -> (addresses: [String], readable: Int) {
        guard await current() != nil else { return ([], 0) }
        var members = readersCached(of: group)
        if members.isEmpty {
            await refresh()
            members = readersCached(of: group)
        }
        let readable = members.filter(\.readable)
        return readable.isEmpty ? (members.map(\.addr), 0) : (readable.map(\.addr), readable.count)
    }

    private func readersCached(of group: UInt32) -> [(addr: String, readable: Bool)] {
        state.withLock { s in
            guard let members = s.snapshot?.groups.first(where: { $0.id == group })?.members else { return [] }
            let readable = members.filter { $0.status.isReadable }
                .sorted { (s.readsInFlight[$0.addr, default: 0], $0.readBytesPerSec) < (s.readsInFlight[$1.addr, default: 0], $1.readBytesPerSec) }
            let others = members.filter { !$0.status.isReadable }.sorted { Self.lastResortRank($0.status) < Self.lastResortRank($1.status) }
            return readable.map { ($0.addr, true) } + others.map { ($0.addr, false) }
        }
    }

    /// Among members the map does not call readable, which to try first: those most likely to
    /// answer with the group's data (merely unheard-of since a takeover) before those set aside.
    private static func lastResortRank(_ status: ServerStatus) -> Int {
        switch status {
        case .down, .initializing, .error: 0
        case .transferring: 1
        case .offline, .readWrite, .readOnly: 2
        }
    }

    /// Counts a read against `addr` while `body` runs.
    func reading<T>(from addr: String, _ body: () async throws -> T) async rethrows -> T {
        state.withLock { $0.readsInFlight[addr, default: 0] += 1 }
        defer { state.withLock { $0.readsInFlight[addr, default: 0] -= 1 } }
        return try await body()
    }
}

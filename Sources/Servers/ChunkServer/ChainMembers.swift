import Synchronization

/// The addresses of this chunkserver's group as the master lists them (each heartbeat's reply
/// carries them), which a chained PUT's `X-Speedy-Chain` must name only: a chunkserver passes a
/// chunk, with its credential, to members of its own group and to nobody else.
///
/// A chain naming an address not known yet (a spare just given the group, or a chunkserver whose
/// first heartbeat has not been answered) sends a heartbeat at once and looks again; callers that
/// miss at the same time wait for that one heartbeat, and at most one is sent per second.
final class ChainMembers: Sendable {
    /// What the master said of the group's members.
    enum Listing: Equatable {
        /// No answer yet.
        case unknown
        /// A master older than the list: chains cannot be checked (logged once).
        case unlisted
        /// The members' addresses.
        case listed(Set<String>)
    }

    private struct State {
        var listing = Listing.unknown
        var lastRefresh: ContinuousClock.Instant?
        var refreshing: Task<Void, Never>?
    }

    private let state = Mutex(State())
    /// Sends a heartbeat now, whose reply it passes to ``update(_:)`` of the members given.
    private let heartbeat: @Sendable (ChainMembers) async -> Void
    static let refreshSpacing: Duration = .seconds(1)

    init(heartbeat: @escaping @Sendable (ChainMembers) async -> Void) {
        self.heartbeat = heartbeat
    }

    /// Takes what a heartbeat's reply lists (nil: the master lists nothing).
    func update(_ members: [String]?) {
        state.withLock { $0.listing = members.map { .listed(Set($0)) } ?? .unlisted }
    }

    /// What is known now.
    var listing: Listing { state.withLock { $0.listing } }

    /// The addresses of `chain` that are not members of the group, after one fresh look if some
    /// were not; empty when every one is, or when the master does not list members.
    func strangers(in chain: [String]) async -> [String] {
        if Self.strangers(in: chain, listing).isEmpty { return [] }
        let now = ContinuousClock.now
        let wait: Task<Void, Never>? = state.withLock { state in
            if let running = state.refreshing { return running }
            if let last = state.lastRefresh, now - last < Self.refreshSpacing { return nil }
            state.lastRefresh = now
            let task = Task {
                await self.heartbeat(self)
                self.state.withLock { $0.refreshing = nil }
            }
            state.refreshing = task
            return task
        }
        await wait?.value
        return Self.strangers(in: chain, listing)
    }

    private static func strangers(in chain: [String], _ listing: Listing) -> [String] {
        switch listing {
        case .unknown: chain
        case .unlisted: []
        case .listed(let members): chain.filter { !members.contains($0) }
        }
    }
}

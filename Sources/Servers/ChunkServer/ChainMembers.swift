import SpeedyCore
import Synchronization

/// The addresses of this chunkserver's group as the master lists them (each heartbeat's reply
/// carries them), which a chained PUT's `X-Speedy-Chain` must name only: a chunkserver passes a
/// chunk, with its credential, to members of its own group and to nobody else.
///
/// A chain naming an address not known yet (a spare just given the group, or a chunkserver whose
/// first heartbeat has not been answered) sends a heartbeat at once and looks again; callers that
/// miss at the same time wait for that one heartbeat, and at most one is sent per second.
final class ChainMembers: Sendable {
    private struct State {
        var members: Set<String> = []
        var lastRefreshMs: Int64 = 0
        var refreshing: Task<Void, Never>?
    }

    private let state = Mutex(State())
    /// Sends a heartbeat and returns the members its reply lists (nil: no answer).
    private let fetch: @Sendable () async -> [String]?
    static let refreshSpacingMs: Int64 = 1000

    init(fetch: @escaping @Sendable () async -> [String]?) {
        self.fetch = fetch
    }

    /// Takes the members a heartbeat's reply lists.
    func update(_ members: [String]) {
        state.withLock { $0.members = Set(members) }
    }

    /// The addresses of `chain` that are not members of the group, after one fresh look if some
    /// were not; empty when every one is.
    func strangers(in chain: [String]) async -> [String] {
        let unknown = state.withLock { state in chain.filter { !state.members.contains($0) } }
        guard !unknown.isEmpty else { return [] }
        let now = currentTimeMillis()
        let wait: Task<Void, Never>? = state.withLock { state in
            if let running = state.refreshing { return running }
            guard now - state.lastRefreshMs >= Self.refreshSpacingMs else { return nil }
            state.lastRefreshMs = now
            let task = Task {
                let members = await self.fetch()
                self.state.withLock { state in
                    if let members { state.members = Set(members) }
                    state.refreshing = nil
                }
            }
            state.refreshing = task
            return task
        }
        await wait?.value
        return state.withLock { state in chain.filter { !state.members.contains($0) } }
    }
}

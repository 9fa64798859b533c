import Foundation
import Synchronization

/// Whether this master leads. Masters sharing a database (``PostgresMasterStore``) take turns
/// under the lease the store keeps: the leader renews it every ``renewInterval``, standbys try to
/// take it, and whoever holds it serves the cluster; the others answer 503 with the leader's
/// address. A master alone on its SQLite file always leads.
///
/// A leader believes it leads only until its last successful claim began plus the lease's time
/// to live, less a margin: the database's lease ran out no earlier than that, so two masters never
/// both believe they lead (and file id reservations are fenced by the term anyway).
public final class MasterLeadership: Sendable {
    /// How this master holds the lead.
    public enum Mode: Sendable, Equatable {
        /// The only master: it always leads (SQLite).
        case sole
        /// One of several on one database, under a lease of `ttl`.
        case shared(ttl: Duration)
    }

    /// What a round of claiming changed.
    public enum Transition: Sendable, Equatable {
        case became(LeaderTerm)
        case lost(reason: String)
    }

    private struct State {
        var term: LeaderTerm?
        var validUntil: ContinuousClock.Instant?
        var leaderURL: String?
    }

    /// This process's id in the lease: unique per start, so a restarted master claims afresh.
    public let holder: String
    public let mode: Mode
    private let state = Mutex(State())
    private let clock = ContinuousClock()
    /// How much earlier than the lease's end a leader stops believing it leads.
    static let margin: Duration = .milliseconds(500)

    /// Creates the leadership of one master; a `shared` one starts as a standby until it claims.
    public init(mode: Mode, holder: String = UUID().uuidString.lowercased()) {
        if case .shared(let ttl) = mode {
            precondition(ttl >= .seconds(1), "a lease shorter than a second would run out before its leader could use it")
        }
        self.mode = mode
        self.holder = holder
    }

    /// How often the lease is claimed or renewed: a few times per time to live, so one lost round
    /// does not end a leadership, and a standby notices a dead leader soon after its lease ends.
    public var renewInterval: Duration {
        switch mode {
        case .sole: .seconds(3600)
        case .shared(let ttl): ttl / 6
        }
    }

    /// Whether this master serves the cluster now.
    public var isLeader: Bool { lead.isLeader }

    /// The term this master leads in, while its lease is surely still held; nil for a standby
    /// and for a sole master (which needs no fence).
    public var currentTerm: LeaderTerm? {
        let now = clock.now
        return state.withLock { s in
            guard let term = s.term, let until = s.validUntil, now < until else { return nil }
            return term
        }
    }

    /// Whether this master may change the map now, and the term its saves are fenced by (nil
    /// for a sole master, which needs none), read together. The master asks inside each change:
    /// a request admitted while leading may have waited past the end of the lease.
    public var lead: (isLeader: Bool, fence: LeaderTerm?) {
        if case .sole = mode { return (true, nil) }
        let term = currentTerm
        return (term != nil, term)
    }

    /// Where clients reach the leader, as it last claimed (nil when unknown or when this is it).
    public var leaderURL: String? { state.withLock { $0.leaderURL } }

    /// Claims or renews the lease once. `becomeLeader` runs before the lead is taken (the master
    /// reloads its map from the database there); when it throws, the lease is given up again.
    public func claim(
        store: any MasterStore, url: String, becomeLeader: (LeaderTerm) async throws -> Void
    ) async -> Transition? {
        guard case .shared(let ttl) = mode else { return nil }
        let started = clock.now
        // The term last held, even if it has lapsed since: its end must still be reported.
        let held = state.withLock { $0.term }
        let valid = currentTerm
        let outcome: Leadership
        do {
            outcome = try await store.claimLeadership(holder: holder, url: url, ttl: ttl)
        } catch {
            // Not renewed: lead on while the last claim holds, then stop.
            guard let held, currentTerm == nil else { return nil }
            return stepDown(from: held, reason: "cannot renew the lease: \(error)")
        }
        switch outcome {
        case .leader(let term):
            let leading = LeaderTerm(holder: holder, term: term)
            // A new term, or ours after a lapse in which this master did not serve: the map may
            // be stale either way.
            if valid != leading {
                do {
                    try await becomeLeader(leading)
                } catch {
                    state.withLock { $0.term = nil; $0.validUntil = nil }
                    try? await store.resign(holder: holder)
                    return .lost(reason: "took the lease (term \(term)) but could not load the cluster state, so gave it up: \(error)")
                }
            }
            state.withLock {
                $0.term = leading
                $0.validUntil = started + ttl - Self.margin
                $0.leaderURL = nil
            }
            return held == leading ? nil : .became(leading)
        case .standby(let leaderURL):
            state.withLock {
                $0.leaderURL = leaderURL
            }
            guard let held else { return nil }
            return stepDown(from: held, reason: "the lease is held by \(leaderURL ?? "another master")")
        }
    }

    private func stepDown(from term: LeaderTerm, reason: String) -> Transition {
        state.withLock {
            $0.term = nil
            $0.validUntil = nil
        }
        return .lost(reason: "term \(term.term): \(reason)")
    }

    /// Gives the lease up, so a standby takes over without waiting for it to run out.
    public func resign(store: any MasterStore) async {
        guard case .shared = mode, currentTerm != nil else { return }
        state.withLock {
            $0.term = nil
            $0.validUntil = nil
        }
        try? await store.resign(holder: holder)
    }
}

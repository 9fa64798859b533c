import CoreMetrics
import NIOCore
import SpeedyCore
import Synchronization

/// The open connections of a port, per client: the table behind
/// ``ConnectionLimits/maxPerClient``, shared by every connection of one server.
public final class ClientConnections: Sendable {
    /// Why a connection was closed by the port's limits (the metric's `reason`).
    public enum Refusal: String, Sendable {
        /// The client had ``ConnectionLimits/maxPerClient`` open already.
        case perClientCap = "per_client_cap"
        /// A request head did not arrive within ``ConnectionLimits/headerTimeout``.
        case headerTimeout = "header_timeout"
    }

    public let limits: ConnectionLimits
    private let open = Mutex<[String: Int]>([:])

    /// A table enforcing `limits`.
    public init(limits: ConnectionLimits) {
        self.limits = limits
    }

    /// Counts a new connection from `peer`; false (and nothing counted) when that is one over
    /// the cap. A peer in ``ConnectionLimits/exempt`` is never refused.
    public func admit(_ peer: SocketAddress?) -> Bool {
        guard limits.maxPerClient > 0, !limits.exempt.contains(where: { $0.contains(peer) }) else { return true }
        let key = ClientNetwork.key(peer)
        let admitted = open.withLock { open in
            let count = open[key, default: 0]
            guard count < limits.maxPerClient else { return false }
            open[key] = count + 1
            return true
        }
        if !admitted { Self.count(.perClientCap) }
        return admitted
    }

    /// Forgets a connection ``admit(_:)`` counted.
    public func release(_ peer: SocketAddress?) {
        let key = ClientNetwork.key(peer)
        open.withLock { open in
            guard let count = open[key] else { return }
            open[key] = count > 1 ? count - 1 : nil
        }
    }

    /// Open connections `peer`'s client holds, as counted (exempt peers are not).
    public func count(of peer: SocketAddress?) -> Int {
        open.withLock { $0[ClientNetwork.key(peer), default: 0] }
    }

    /// Counts a connection the limits closed in `speedy_connections_refused_total`.
    static func count(_ refusal: Refusal) {
        Counter(label: "speedy_connections_refused_total", dimensions: [("reason", refusal.rawValue)]).increment()
    }
}

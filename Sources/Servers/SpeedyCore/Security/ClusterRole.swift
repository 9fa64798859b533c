/// A kind of process that calls the cluster's internal APIs, as its credential names it.
///
/// With a role table (``RoleTable``) each role holds a secret of its own, and an internal port
/// lets a caller do only what its role needs (`RouteAuthorization`): an imageserver does not
/// retire servers, a chunkserver does not rewrite blob records. `operator` is the people and their
/// tools (chunktool, transfer, speedy-console): it may call every route. `monitor` is what scrapes
/// metrics (Prometheus): `/metrics` on every port, and nothing else.
public enum ClusterRole: String, Sendable, CaseIterable, Codable, Comparable, CustomStringConvertible {
    case chunkmaster, metaserver, chunkserver, imageserver, tracker, monitor, `operator`

    /// The roles that serve a port of their own, to which a credential can be bound.
    public static let servers: [ClusterRole] = [.chunkmaster, .metaserver, .chunkserver, .imageserver, .tracker]

    /// Whether this role serves a port (see ``servers``).
    public var servesAPort: Bool { Self.servers.contains(self) }

    /// In declaration order.
    public static func < (a: ClusterRole, b: ClusterRole) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// The role's name, as in the table and on the command line.
    public var description: String { rawValue }
}

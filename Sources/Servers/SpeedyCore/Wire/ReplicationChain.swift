/// The members a chunk is written to, in the order it flows: the imageserver sends the chunk to
/// the head only; each member stores it and streams it on to the next while it still arrives, and
/// answers only once every member after it has answered. A chunk counts when the head reports
/// as many durable replicas as the chain has members (GFS's data flow, section 3.2).
///
/// On the wire, a PUT carries the members after the receiver in ``SpeedyHeader/chain`` as
/// comma-separated `HOST:PORT`s, and the answer carries ``SpeedyHeader/replicas``.
public struct ReplicationChain: Sendable, Hashable {
    /// The longest chain a header may name: groups are normally 3, a replacement makes 4.
    public static let maxMembers = 8

    private static let hostBytes = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:".utf8)

    /// Member addresses (`HOST:PORT`), head first.
    public let members: [String]

    /// A chain over `members`, head first.
    public init(_ members: [String]) {
        self.members = members
    }

    /// The members of a group rotated so that `fileId` picks the head: successive chunks start
    /// at successive members, so no member's link carries a group's whole incoming load.
    public static func rotated(_ members: [String], by fileId: UInt64) -> ReplicationChain {
        guard !members.isEmpty else { return ReplicationChain([]) }
        let start = Int(fileId % UInt64(members.count))
        return ReplicationChain(Array(members[start...] + members[..<start]))
    }

    /// Parses a ``SpeedyHeader/chain`` value: at most ``maxMembers`` `HOST:PORT`s with a real
    /// port, no repeats. Nil for anything else; an empty value is an empty chain.
    public static func parseTail(_ header: String) -> [String]? {
        guard header.utf8.count <= 2048 else { return nil }
        let parts = header.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces }
        if parts == [""] { return [] }
        guard parts.count <= maxMembers, Set(parts).count == parts.count else { return nil }
        for part in parts {
            // Host names and IPv4/IPv6 literals only: nothing that could make the URL built from
            // it point at another host or port (`/`, `@`, `?`, `#`).
            guard let address = HostPort(parsing: part), address.port > 0, !address.host.isEmpty,
                address.host.utf8.allSatisfy({ Self.hostBytes.contains($0) })
            else { return nil }
        }
        return parts
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

/// The state of one chunkserver, as it reports itself or as the master sees it.
///
/// `INIT`, `RW`, `RO` and `ERR` come from the chunkserver's heartbeat; `DOWN` is set by the master
/// when heartbeats stop.
public enum ServerStatus: String, Sendable, Codable, CaseIterable {
    /// Starting up: recovering its index, not yet serving.
    case initializing = "INIT"
    /// Serving reads and writes.
    case readWrite = "RW"
    /// Serving reads only (free space under the reserve, or set by an operator).
    case readOnly = "RO"
    /// Serving nothing reliably: a disk error was seen.
    case error = "ERR"
    /// No heartbeat for longer than the master's down timeout.
    case down = "DOWN"

    /// Whether the server answers reads.
    public var isReadable: Bool { self == .readWrite || self == .readOnly }
}

/// The health of a group, derived by the master from its members' states.
public enum GroupState: String, Sendable, Codable, CaseIterable {
    /// Every member is up and writable: the group takes writes.
    case healthy
    /// At least one member is up, but some member is down, read-only or failing; readable, not writable.
    case degraded
    /// Every member is up and read-only (for example all disks full): readable, not writable.
    case readOnly = "read-only"
    /// No member is up: the group's chunks cannot be read.
    case down

    /// Derives a group's state from its members' statuses.
    ///
    /// A group with no members is `down`. Writes need every replica, so only `healthy` is writable.
    public static func derive(from members: [ServerStatus]) -> GroupState {
        let up = members.filter(\.isReadable)
        if up.isEmpty { return .down }
        if up.count == members.count {
            if up.allSatisfy({ $0 == .readWrite }) { return .healthy }
            if up.allSatisfy({ $0 == .readOnly }) { return .readOnly }
        }
        return .degraded
    }

    /// Whether new chunks may be written to the group.
    public var isWritable: Bool { self == .healthy }
}

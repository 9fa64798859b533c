/// The state of one chunkserver, as it reports itself or as the master sees it.
///
/// `INIT`, `RW`, `RO` and `ERR` come from the chunkserver's heartbeat. `DOWN` is set by the master
/// when heartbeats stop. `RO`, `OFFLINE` and `TRANSFERRING` can also be set by an operator
/// (`chunktool server set-status`, `transfer`); the master keeps that setting across restarts and
/// it overrides a reported `RW`.
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
    /// Taken out of service by an operator: neither read nor written, though it may be running.
    case offline = "OFFLINE"
    /// A replacement being filled by `transfer`: it takes every new write of its group but serves
    /// no reads until the transfer has verified it and the master marks it `RW`.
    case transferring = "TRANSFERRING"

    /// Whether the server answers reads.
    public var isReadable: Bool { self == .readWrite || self == .readOnly }

    /// Whether new chunks of its group are written to the server.
    public var takesWrites: Bool { self == .readWrite || self == .transferring }

    /// Whether the server holds none of its group's writes for now (gone or set aside).
    public var isAbsent: Bool { self == .down || self == .offline }
}

/// The health of a group, derived by the master from its members' states.
public enum GroupState: String, Sendable, Codable, CaseIterable {
    /// Every member is up and writable: the group takes writes.
    case healthy
    /// A replacement is being filled (`TRANSFERRING`) for each absent member, and every other
    /// member is writable: the group takes writes (the replacement gets them too), reads go to the
    /// `RW` members.
    case recovering
    /// At least one member is up, but some member is down, read-only or failing; readable, not writable.
    case degraded
    /// Every member is up and read-only (for example all disks full): readable, not writable.
    case readOnly = "read-only"
    /// No member is up: the group's chunks cannot be read.
    case down

    /// Derives a group's state from its members' statuses.
    ///
    /// A group with no members is `down`. Writes need every replica, so a group is writable only
    /// when every member that is there takes writes, and a `TRANSFERRING` replacement stands in
    /// for each `DOWN` or `OFFLINE` one.
    public static func derive(from members: [ServerStatus]) -> GroupState {
        let up = members.filter(\.isReadable)
        if up.isEmpty { return .down }
        if up.count == members.count {
            if up.allSatisfy({ $0 == .readWrite }) { return .healthy }
            if up.allSatisfy({ $0 == .readOnly }) { return .readOnly }
        }
        let transferring = members.count { $0 == .transferring }
        let absent = members.count(where: \.isAbsent)
        let present = members.filter { !$0.isAbsent }
        if transferring > 0, absent <= transferring, present.allSatisfy(\.takesWrites) { return .recovering }
        return .degraded
    }

    /// Whether new chunks may be written to the group.
    public var isWritable: Bool { self == .healthy || self == .recovering }
}

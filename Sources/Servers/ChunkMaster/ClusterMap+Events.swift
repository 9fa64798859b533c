import SpeedyCore

extension ClusterMap.Change {
    /// Whether the change alters what the master's database keeps (servers, groups, settings),
    /// not just the live picture.
    public var isDurable: Bool {
        switch self {
        case .serverJoined, .serverAdded, .addressChanged, .groupAdded, .groupRemoved, .statusSet, .fenced, .serverRetired, .spareAssigned, .drainSet: true
        case .serverUp, .serverDown, .statusChanged, .groupState, .errorsRose: false
        }
    }

    /// The event-log form: kind, server, group and a sentence.
    public var event: (kind: String, serverId: String?, group: UInt32?, message: String) {
        switch self {
        case .serverJoined(let id, let group, let addr):
            group == HeartbeatReport.spareGroup
                ? ("server-joined", id, nil, "spare \(id) joined at \(addr), waiting for a group that needs it")
                : ("server-joined", id, group, "server \(id) joined group \(group) at \(addr)")
        case .serverUp(let id, let group):
            ("server-up", id, group, "server \(id) in group \(group) is up")
        case .serverDown(let id, let group, let silentMs):
            ("server-down", id, group, "server \(id) in group \(group) is down: no heartbeat for \(silentMs) ms")
        case .statusChanged(let id, let group, let from, let to):
            ("status-change", id, group, "server \(id) in group \(group) went from \(from.rawValue) to \(to.rawValue)")
        case .addressChanged(let id, let group, let from, let to):
            ("address-change", id, group, "server \(id) in group \(group) moved from \(from) to \(to)")
        case .groupState(let group, let from, let to):
            ("group-state", nil, group, "group \(group) is \(to.rawValue)" + (from.map { " (was \($0.rawValue))" } ?? ""))
        case .errorsRose(let id, let group, let crc, let io):
            ("disk-errors", id, group, "server \(id) in group \(group) reports errors: \(crc) CRC mismatches, \(io) disk errors since it started")
        case .groupAdded(let group):
            ("group-added", nil, group, "group \(group) was created")
        case .groupRemoved(let group):
            ("group-removed", nil, group, "group \(group) was removed")
        case .serverAdded(let id, let group, let addr):
            ("server-added", id, group, "server \(id) at \(addr) was registered in group \(group)")
        case .statusSet(let id, let group, let to, let why):
            ("status-set", id, group, "server \(id) in group \(group) was set to \(to?.rawValue ?? "RW (its own report)") (\(why))")
        case .serverRetired(let id, let group):
            ("server-removed", id, group, "server \(id) was removed from group \(group)")
        case .fenced(let id, let group, let by):
            ("server-fenced", id, group, "server \(id) in group \(group) was set to OFFLINE: \(by) is replacing it, so it has missed writes")
        case .spareAssigned(let id, let group, let replacing):
            ("spare-assigned", id, group, "spare \(id) joined group \(group) as TRANSFERRING, to replace \(replacing), which stayed down")
        case .drainSet(let group, let since):
            since == nil
                ? ("group-drain", nil, group, "group \(group) takes new chunks again (no longer draining)")
                : ("group-drain", nil, group, "group \(group) is draining: it takes no new chunks, and its chunks are to move to other groups")
        }
    }
}

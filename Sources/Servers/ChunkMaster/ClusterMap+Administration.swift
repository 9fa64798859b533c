import SpeedyCore

/// What operators change through the master: groups, server registration and removal, statuses,
/// and the fencing of members that miss writes while their group is being recovered.
extension ClusterMap {
    /// Why an administrative change was refused.
    public enum AdminError: Error, Sendable, Equatable, CustomStringConvertible {
        case unknownServer(String)
        case unknownGroup(UInt32)
        case groupExists(UInt32)
        case serverRetired(String)
        case serverExists(String)
        /// Only `RW`, `RO`, `OFFLINE` and `TRANSFERRING` can be set.
        case notSettable(ServerStatus)
        /// A server still serving cannot be removed; set it `OFFLINE` first.
        case stillServing(String, ServerStatus)
        /// A group with members cannot be removed; remove them first.
        case groupNotEmpty(UInt32, members: Int)
        /// Only a waiting spare can be given a group; this server is in `group`.
        case notSpare(String, group: UInt32)
        /// A drained group is removed with its members only once none that serves holds a chunk.
        case drainedGroupHoldsChunks(UInt32, servers: [String])
        /// `server` would join `group` in `zone`, where member `other` is already
        /// (``ClusterMap/zoneConflict(for:in:zone:)``).
        case zoneConflict(server: String, group: UInt32, zone: String, other: String)

        public var description: String {
            switch self {
            case .unknownServer(let id): "no server \(id) is known to the master"
            case .unknownGroup(let id): "no group \(id) is known to the master"
            case .groupExists(let id): "group \(id) exists already"
            case .serverRetired(let id): "server \(id) was removed from the cluster; start a new chunkserver with an empty data directory instead"
            case .serverExists(let id): "server \(id) is registered already"
            case .notSettable(let status): "status \(status.rawValue) cannot be set; use RW, RO, OFFLINE or TRANSFERRING"
            case .stillServing(let id, let status): "server \(id) is \(status.rawValue); only a DOWN or OFFLINE server can be removed (set it OFFLINE first)"
            case .groupNotEmpty(let id, let members):
                "group \(id) has \(members) member\(members == 1 ? "" : "s"); only an empty group can be removed (`chunktool server remove` them first)"
            case .notSpare(let id, let group): "server \(id) is a member of group \(group), not a waiting spare"
            case .drainedGroupHoldsChunks(let id, let servers):
                "group \(id) is drained but \(servers.joined(separator: ", ")) still hold\(servers.count == 1 ? "s" : "") chunks: "
                    + "run `chunktool gc` once the drain's old copies are past the grace, then remove it again"
            case .zoneConflict(let server, let group, let zone, let other):
                "server \(server) cannot join group \(group): its member \(other) is in zone \(zone) already, and a group's members "
                    + "must be in different failure zones; start the chunkserver with another --zone, or the master with --allow-same-zone"
            }
        }

        /// Its code on the wire.
        public var code: InternalErrorCode {
            switch self {
            case .unknownServer: .serverUnknown
            case .unknownGroup: .groupUnknown
            case .groupExists: .groupExists
            case .serverRetired: .serverRetired
            case .serverExists: .serverExists
            case .notSettable: .statusInvalid
            case .stillServing: .serverServing
            case .groupNotEmpty: .groupNotEmpty
            case .notSpare: .serverExists
            case .drainedGroupHoldsChunks: .groupNotEmpty
            case .zoneConflict: .zoneConflict
            }
        }
    }


    /// Creates an empty group.
    public mutating func addGroup(_ id: UInt32) throws(AdminError) -> [Change] {
        guard groupStates[id] == nil else { throw .groupExists(id) }
        groupStates[id] = .down
        return [.groupAdded(group: id)]
    }

    /// Removes a group with no members (a mistaken `group add`, or one whose servers were all
    /// removed), or a drained one (``setDraining(_:sinceMs:)``) whose serving members hold no
    /// chunk any more, retiring its members with it. A chunkserver that later heartbeats for a
    /// removed group makes it again, as for any new group; a retired one is refused.
    public mutating func removeGroup(_ id: UInt32) throws(AdminError) -> [Change] {
        guard groupStates[id] != nil else { throw .unknownGroup(id) }
        let inGroup = members.values.filter { $0.group == id }.sorted { $0.id < $1.id }
        var changes: [Change] = []
        if !inGroup.isEmpty {
            guard draining[id] != nil else { throw .groupNotEmpty(id, members: inGroup.count) }
            // The master cannot see the metadata; an empty listing on every member that serves is
            // what a drain, then a collection, leaves (an absent member's disk is gone with it).
            let holding = inGroup.filter { !$0.status.isAbsent && ($0.report?.chunkCount ?? 0) > 0 }.map(\.id)
            guard holding.isEmpty else { throw .drainedGroupHoldsChunks(id, servers: holding) }
            for member in inGroup {
                members[member.id] = nil
                retired.insert(member.id)
                changes.append(.serverRetired(id: member.id, group: id))
            }
        }
        groupStates[id] = nil
        draining[id] = nil
        return changes + [.groupRemoved(group: id)]
    }

    /// Drains `id` from `sinceMs` (the wall clock: imageservers place no new chunks in it), or
    /// with nil lets it take chunks again. Setting what is set already changes nothing (a drain
    /// run again keeps its first time).
    public mutating func setDraining(_ id: UInt32, sinceMs: Int64?) throws(AdminError) -> [Change] {
        guard groupStates[id] != nil else { throw .unknownGroup(id) }
        guard (draining[id] == nil) != (sinceMs == nil) else { return [] }
        draining[id] = sinceMs
        return [.drainSet(group: id, sinceMs: sinceMs)]
    }

    /// Registers a server ahead of its heartbeats. Without a `status`, the master decides at its
    /// first report, as for a server that joins by heartbeat. Unless `allowSameZone`, a server
    /// whose zone another member of the group is in already is refused (`zoneConflict`).
    public mutating func register(_ registration: ServerRegistration, allowSameZone: Bool = false) throws(AdminError) -> [Change] {
        guard !retired.contains(registration.id) else { throw .serverRetired(registration.id) }
        guard members[registration.id] == nil else { throw .serverExists(registration.id) }
        if let status = registration.status, !StatusSetting.settable.contains(status) { throw .notSettable(status) }
        let zone = registration.zone ?? FailureZone.defaultZone(ofAddress: registration.addr)
        if !allowSameZone, let other = zoneConflict(for: registration.id, in: registration.group, zone: zone) {
            throw .zoneConflict(server: registration.id, group: registration.group, zone: zone, other: other)
        }
        var member = Member(id: registration.id, group: registration.group, addr: registration.addr, report: nil, lastSeenMs: nil, isUp: false)
        member.zone = registration.zone
        var changes: [Change] = [.serverAdded(id: member.id, group: member.group, addr: member.addr)]
        if let wanted = registration.status {
            member.isNewcomer = false
            if wanted != .readWrite {
                member.setStatus = wanted
                changes.append(.statusSet(id: member.id, group: member.group, to: wanted, why: "operator"))
            }
        }
        members[member.id] = member
        if groupStates[member.group] == nil { groupStates[member.group] = .down }
        return changes + rederive(groups: [member.group])
    }

    /// Sets (or, with `RW`, clears) an operator's status for a server.
    public mutating func setStatus(of id: String, to status: ServerStatus) throws(AdminError) -> [Change] {
        guard let member = members[id] else { throw retired.contains(id) ? .serverRetired(id) : .unknownServer(id) }
        guard StatusSetting.settable.contains(status) else { throw .notSettable(status) }
        let setting: ServerStatus? = status == .readWrite ? nil : status
        guard member.setStatus != setting || member.fencedBy != nil else { return [] }
        members[id]!.setStatus = setting
        members[id]!.fencedBy = nil
        let changes: [Change] = [.statusSet(id: id, group: member.group, to: setting, why: "operator")]
        return changes + rederive(groups: [member.group])
    }

    /// Removes a `DOWN` or `OFFLINE` server from the cluster for good.
    public mutating func retire(_ id: String) throws(AdminError) -> [Change] {
        guard let member = members[id] else { throw retired.contains(id) ? .serverRetired(id) : .unknownServer(id) }
        guard member.status.isAbsent else { throw .stillServing(id, member.status) }
        members[id] = nil
        retired.insert(id)
        return [.serverRetired(id: id, group: member.group)] + rederive(groups: [member.group])
    }

    /// While `group` is `recovering` (writable, a replacement standing in for its absent
    /// members), its `DOWN` members miss every write: set them `OFFLINE`, fenced for the
    /// replacement, so one that comes back cannot serve as if it had not (it stays `OFFLINE` until
    /// an operator says otherwise, or `transfer` into the replacement retires it). A group that
    /// is not writable misses nothing, so nothing is fenced then. Right after a master restart
    /// every remembered member looks down until it reports: members this master never saw are
    /// fenced only once it has run longer than the down timeout.
    ///
    /// Called for every group whose state is derived again, with that state: every change that
    /// can make a group recovering, or lose a member of one, goes through ``rederive(groups:)``.
    mutating func fenceMissedWrites(in group: UInt32, state: GroupState) -> [Change] {
        guard state == .recovering,
            let replacement = members.values.filter({ $0.group == group && $0.status == .transferring }).map(\.id).min()
        else { return [] }
        var changes: [Change] = []
        for (id, member) in members.sorted(by: { $0.key < $1.key })
        where member.group == group && member.status == .down && member.setStatus != .transferring
            && (member.lastSeenMs != nil || startupGraceOver)
        {
            members[id]!.setStatus = .offline
            members[id]!.fencedBy = replacement
            changes.append(.fenced(id: id, group: group, by: replacement))
        }
        return changes
    }

    /// Whether any member of `group` reported chunks.
    func groupHoldsChunks(_ group: UInt32) -> Bool {
        members.values.contains { $0.group == group && ($0.report?.chunkCount ?? 0) > 0 }
    }
}

import SpeedyCore

/// Spare chunkservers and the automatic replacement of members that stay down: which member to
/// replace, which spare takes its place, and the assignment itself.
extension ClusterMap {
    /// A member that has been `DOWN` too long, in a group that can be refilled.
    public struct Replacement: Sendable, Equatable {
        /// The group, and the member that stays down.
        public var group: UInt32
        public var dead: String
        /// The spare to take its place.
        public var spare: String

        /// Creates a replacement.
        public init(group: UInt32, dead: String, spare: String) {
            self.group = group
            self.dead = dead
            self.spare = spare
        }
    }

    /// The replacements due at `nowMs`: in each group with no `TRANSFERRING` member and a
    /// readable one to copy from, the member silent for longer than `afterMs` (the longest
    /// silent first), with the spare that would take its place. One per group at a time; no
    /// spare is given twice. A draining group gets none (its chunks are leaving it), and a spare
    /// in the failure zone of a member that stays in the group is not given to it unless
    /// `allowSameZone`.
    public func replacementsDue(afterMs: Int64, nowMs: Int64, allowSameZone: Bool = false) -> [Replacement] {
        var taken: Set<String> = []
        var due: [Replacement] = []
        for group in groupStates.keys.sorted() where draining[group] == nil {
            let inGroup = members.values.filter { $0.group == group }
            guard !inGroup.contains(where: { $0.status == .transferring }),
                inGroup.contains(where: { $0.status.isReadable }),
                let dead = inGroup.filter({ silentMs($0, nowMs: nowMs).map { $0 > afterMs } ?? false })
                    .max(by: { (silentMs($0, nowMs: nowMs) ?? 0, $1.id) < (silentMs($1, nowMs: nowMs) ?? 0, $0.id) }),
                let spare = spare(for: group, excluding: taken, allowSameZone: allowSameZone)
            else { continue }
            taken.insert(spare)
            due.append(Replacement(group: group, dead: dead.id, spare: spare))
        }
        return due
    }

    /// How long a member that needs a replacement has been silent: one `DOWN`, or one fenced
    /// `OFFLINE` for a replacement that replaced another (two died at once); nil for any other,
    /// or for one this master has not yet had the time to miss.
    func silentMs(_ member: Member, nowMs: Int64) -> Int64? {
        guard member.status == .down || (member.status == .offline && member.fencedBy != nil && !member.isUp) else { return nil }
        if let seen = member.lastSeenMs { return nowMs - seen }
        return startupGraceOver ? nowMs - startedMs : nil
    }

    /// The waiting spare to put into `group`: up and writable, in a zone no other member of the
    /// group holds (unless `allowSameZone`), the most free space first. The dead member holds
    /// no zone once it is seen down, so a spare in its zone may take its place.
    func spare(for group: UInt32, excluding taken: Set<String>, allowSameZone: Bool) -> String? {
        members.values.filter { spare in
            spare.group == HeartbeatReport.spareGroup && spare.report?.spare == true && spare.status == .readWrite
                && !taken.contains(spare.id)
                && (allowSameZone || zoneConflict(for: spare.id, in: group, zone: spare.failureZone) == nil)
        }.max { ($0.report?.diskFreeBytes ?? 0, $1.id) < ($1.report?.diskFreeBytes ?? 0, $0.id) }?.id
    }

    /// Makes the waiting spare `id` a `TRANSFERRING` member of `group` in place of `dead`, which
    /// is fenced `OFFLINE` for it (the group is recovering: writable, the spare taking the dead
    /// member's writes while it is filled).
    public mutating func assignSpare(_ id: String, to group: UInt32, replacing dead: String) throws(AdminError) -> [Change] {
        guard let spare = members[id] else { throw retired.contains(id) ? .serverRetired(id) : .unknownServer(id) }
        guard spare.group == HeartbeatReport.spareGroup else { throw .notSpare(id, group: spare.group) }
        guard groupStates[group] != nil else { throw .unknownGroup(group) }
        members[id]!.group = group
        members[id]!.setStatus = .transferring
        members[id]!.isNewcomer = false
        var changes: [Change] = [.spareAssigned(id: id, group: group, replacing: dead)]
        // The dead member is fenced for this spare even when an earlier replacement fenced it:
        // the spare's fill ends by removing it.
        if members[dead] != nil, members[dead]!.fencedBy != id {
            members[dead]!.setStatus = .offline
            members[dead]!.fencedBy = id
            changes.append(.fenced(id: dead, group: group, by: id))
        }
        return changes + rederive(groups: [group])
    }
}

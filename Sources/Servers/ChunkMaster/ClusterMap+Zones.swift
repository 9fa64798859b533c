import SpeedyCore

/// Failure domains: the members of a group go in different zones (`speedy chunkserver --zone`,
/// else the host of each one's address), so one zone failing costs a group one copy at most.
extension ClusterMap {
    /// The member of `group` other than `server` that is in `zone` already, the lowest id when
    /// several are; nil when none is, and always for group 0 (waiting spares share no data).
    ///
    /// Retired servers are gone from the map, so they never count. Nor does a member `DOWN` or
    /// `OFFLINE` that the master saw go (or had time to hear from since it started): its
    /// replacement usually goes where it was, and the group fences it once the replacement takes
    /// its writes. Automatic replacement picks spares this leaves nil for.
    public func zoneConflict(for server: String, in group: UInt32, zone: String) -> String? {
        guard group != HeartbeatReport.spareGroup else { return nil }
        return members.values
            .filter { $0.id != server && $0.group == group && $0.failureZone == zone && holdsZone($0) }
            .map(\.id).min()
    }

    /// Refuses a heartbeat that would put its server into a group where another member is in its
    /// zone already: a server joining the group (new, or from another group), or a member that
    /// moved to another zone. A member that stays where it was is never refused, so a master
    /// restarted without `--allow-same-zone` keeps serving the groups it allowed before.
    /// - Throws: `.zoneConflict`, naming the member in the way.
    public func checkZone(of report: HeartbeatReport) throws(AdminError) {
        let member = members[report.serverId]
        // The group ``apply(_:nowMs:)`` keeps it in: a spare given one reports group 0 until it learns it.
        var group = report.group
        if let member, report.group == HeartbeatReport.spareGroup, report.spare == true { group = member.group }
        let zone = report.zone ?? member?.zone ?? FailureZone.defaultZone(ofAddress: report.addr)
        if let member, member.group == group {
            // Remembered from the database, it has no zone yet: it is where it was.
            if member.report == nil && member.zone == nil || member.failureZone == zone { return }
        }
        guard let other = zoneConflict(for: report.serverId, in: group, zone: zone) else { return }
        throw .zoneConflict(server: report.serverId, group: group, zone: zone, other: other)
    }

    /// Whether `member` keeps its zone taken in its group: unless it is absent and the master
    /// has seen it go, or had the down timeout since it started to hear from it.
    func holdsZone(_ member: Member) -> Bool {
        !member.status.isAbsent || (member.lastSeenMs == nil && !startupGraceOver)
    }
}

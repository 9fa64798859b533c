import SpeedyCore

/// The master's live picture of the cluster, built from heartbeats: plain values and pure
/// functions of time, so it is tested without a network or a clock.
public struct ClusterMap: Sendable {
    /// Samples of per-second throughput kept per server (5 minutes at one heartbeat a second).
    public static let historyLength = 300

    /// What the master knows of one chunkserver.
    public struct Member: Sendable {
        public var id: String
        public var group: UInt32
        public var addr: String
        /// The last report, nil for a server known only from the database (master restarted).
        public var report: HeartbeatReport?
        /// Milliseconds (monotonic) when the last heartbeat arrived.
        public var lastSeenMs: Int64?
        /// Whether heartbeats are arriving.
        public var isUp: Bool
        public var readBytesPerSec: Double = 0
        public var writeBytesPerSec: Double = 0
        public var readOpsPerSec: Double = 0
        public var writeOpsPerSec: Double = 0
        /// Oldest first.
        public var readHistory: [Double] = []
        public var writeHistory: [Double] = []

        /// The operator's setting (`RO`, `OFFLINE`, `TRANSFERRING`), nil when none.
        public var setStatus: ServerStatus?
        /// The replacement this (dead) member was fenced `OFFLINE` for; `transfer` into that
        /// replacement retires it.
        public var fencedBy: String?
        /// Joined in this master's lifetime and not yet past its first report after `INIT`. Not
        /// saved: after a master restart every remembered server counts as known (a server
        /// registered but not yet reporting then joins as it reports; set it TRANSFERRING by hand).
        var isNewcomer = true
        /// The zone it reported (`--zone`), or was registered with while it reports none; nil:
        /// its address's host counts (``failureZone``). Not saved: a restarted master learns it
        /// again from the next heartbeat.
        public var zone: String?

        /// The failure zone it counts in: ``zone``, else the host of its address.
        public var failureZone: String { zone ?? FailureZone.defaultZone(ofAddress: addr) }

        /// Status as shown to operators and imageservers: `OFFLINE` when set so; `DOWN` when
        /// silent; else the reported one, with an operator's setting in place of a reported `RW`.
        public var status: ServerStatus {
            if setStatus == .offline { return .offline }
            guard isUp else { return .down }
            let reported = report?.status ?? .initializing
            if let setStatus, reported == .readWrite { return setStatus }
            return reported
        }
    }

    /// Something that changed, for the event log.
    public enum Change: Sendable, Equatable {
        case serverJoined(id: String, group: UInt32, addr: String)
        case serverUp(id: String, group: UInt32)
        case serverDown(id: String, group: UInt32, silentMs: Int64)
        case statusChanged(id: String, group: UInt32, from: ServerStatus, to: ServerStatus)
        case addressChanged(id: String, group: UInt32, from: String, to: String)
        case groupState(group: UInt32, from: GroupState?, to: GroupState)
        case errorsRose(id: String, group: UInt32, crcErrors: UInt64, ioErrors: UInt64)
        case groupAdded(group: UInt32)
        case groupRemoved(group: UInt32)
        case serverAdded(id: String, group: UInt32, addr: String)
        /// An operator's setting (nil: cleared), or the master's own on a join; `why` says which.
        case statusSet(id: String, group: UInt32, to: ServerStatus?, why: String)
        case serverRetired(id: String, group: UInt32)
        /// A dead member set `OFFLINE` because `by` began taking its writes.
        case fenced(id: String, group: UInt32, by: String)
        /// A waiting spare made a `TRANSFERRING` member of `group`, to replace `replacing`.
        case spareAssigned(id: String, group: UInt32, replacing: String)
        /// `group` drained since `sinceMs` (wall clock): it takes no new chunks; nil: it takes
        /// them again.
        case drainSet(group: UInt32, sinceMs: Int64?)
    }

    /// Members by id.
    public internal(set) var members: [String: Member] = [:]
    /// Last derived state per group; every known group has one, members or not.
    public internal(set) var groupStates: [UInt32: GroupState] = [:]
    /// Servers removed from the cluster; their heartbeats are refused.
    public internal(set) var retired: Set<String> = []
    /// Groups being drained (`chunktool group drain`), with when it was asked for (wall clock,
    /// milliseconds): imageservers place no new chunks in them.
    public internal(set) var draining: [UInt32: Int64] = [:]
    /// Whether the master has run longer than the down timeout, so a remembered member that has
    /// not reported yet is really silent.
    public internal(set) var startupGraceOver = false
    /// When (monotonic milliseconds) this map began to take heartbeats: the master's start, or
    /// the moment it took the lead from another.
    public internal(set) var startedMs: Int64 = 0

    /// An empty map, taking heartbeats from `startedMs`.
    public init(startedMs: Int64 = 0) {
        self.startedMs = startedMs
    }

    /// Adds servers remembered in the database; they count as down until they report.
    public mutating func restore(
        id: String, group: UInt32, addr: String, setStatus: ServerStatus? = nil, fencedBy: String? = nil, retired: Bool = false
    ) {
        if retired {
            self.retired.insert(id)
            return
        }
        members[id] = Member(
            id: id, group: group, addr: addr, report: nil, lastSeenMs: nil, isUp: false, setStatus: setStatus, fencedBy: fencedBy, isNewcomer: false)
        if group != HeartbeatReport.spareGroup { groupStates[group] = state(of: group) }
    }

    /// Adds a group remembered in the database, drained since `drainingSinceMs` when not nil.
    public mutating func restore(group: UInt32, drainingSinceMs: Int64? = nil) {
        // Group 0 is where spares wait (saved as a row so they can be), not a group.
        guard group != HeartbeatReport.spareGroup else { return }
        if groupStates[group] == nil { groupStates[group] = state(of: group) }
        if let drainingSinceMs { draining[group] = drainingSinceMs }
    }

    /// Whether `id` was removed from the cluster.
    public func isRetired(_ id: String) -> Bool { retired.contains(id) }

    // MARK: Heartbeats

    /// Takes a heartbeat that arrived at `nowMs` (monotonic milliseconds).
    public mutating func apply(_ report: HeartbeatReport, nowMs: Int64) -> [Change] {
        var changes: [Change] = []
        var member = members[report.serverId]
            ?? Member(id: report.serverId, group: report.group, addr: report.addr, report: nil, lastSeenMs: nil, isUp: false)
        if members[report.serverId] == nil {
            changes.append(.serverJoined(id: report.serverId, group: report.group, addr: report.addr))
        }
        // An empty newcomer to a group with data must be filled before it may serve reads. One
        // that holds chunks is a replica the master did not know (its database was lost, say).
        if member.isNewcomer, report.status != .initializing {
            member.isNewcomer = false
            if member.setStatus == nil, report.chunkCount == 0, groupHoldsChunks(report.group) {
                member.setStatus = .transferring
                changes.append(.statusSet(id: member.id, group: report.group, to: .transferring, why: "it is empty and its group holds chunks"))
            }
        } else if !member.isUp {
            changes.append(.serverUp(id: member.id, group: report.group))
        } else if let previous = member.report?.status, previous != report.status {
            // The server's own report changed; an operator's setting is logged when it is set.
            changes.append(.statusChanged(id: member.id, group: report.group, from: previous, to: report.status))
        }
        if member.addr != report.addr, members[report.serverId] != nil {
            changes.append(.addressChanged(id: member.id, group: report.group, from: member.addr, to: report.addr))
        }
        let oldGroup = member.group
        if let previous = member.report, report.uptimeMs > previous.uptimeMs,
            report.crcErrors > previous.crcErrors || report.ioErrors > previous.ioErrors
        {
            changes.append(.errorsRose(id: member.id, group: report.group, crcErrors: report.crcErrors, ioErrors: report.ioErrors))
        }
        if let previous = member.report, let rate = CounterRate(uptimeMs: report.uptimeMs, previousUptimeMs: previous.uptimeMs) {
            member.readBytesPerSec = rate.of(report.readBytes, previous.readBytes)
            member.writeBytesPerSec = rate.of(report.writeBytes, previous.writeBytes)
            member.readOpsPerSec = rate.of(report.readOps, previous.readOps)
            member.writeOpsPerSec = rate.of(report.writeOps, previous.writeOps)
        } else {
            // First report, or the server restarted and its counters began again.
            (member.readBytesPerSec, member.writeBytesPerSec, member.readOpsPerSec, member.writeOpsPerSec) = (0, 0, 0, 0)
        }
        member.readHistory.append(member.readBytesPerSec)
        member.writeHistory.append(member.writeBytesPerSec)
        if member.readHistory.count > Self.historyLength {
            member.readHistory.removeFirst(member.readHistory.count - Self.historyLength)
            member.writeHistory.removeFirst(member.writeHistory.count - Self.historyLength)
        }
        // A spare the master gave a group reports group 0 until its next heartbeat's reply
        // reaches it: the assignment stands.
        if !(report.group == HeartbeatReport.spareGroup && report.spare == true && member.group != HeartbeatReport.spareGroup) {
            member.group = report.group
        }
        member.addr = report.addr
        // A server that names no zone keeps the one it was registered with.
        if let zone = report.zone { member.zone = zone }
        member.report = report
        member.lastSeenMs = nowMs
        member.isUp = true
        members[member.id] = member
        changes += rederive(groups: Set([oldGroup, member.group]))
        return changes
    }

    /// Marks servers silent for longer than `downAfterMs` as down.
    public mutating func expire(nowMs: Int64, downAfterMs: Int64) -> [Change] {
        var changes: [Change] = []
        var groups: Set<UInt32> = []
        for (id, member) in members where member.isUp {
            let silent = nowMs - (member.lastSeenMs ?? nowMs)
            if silent > downAfterMs {
                members[id]!.isUp = false
                members[id]!.readBytesPerSec = 0
                members[id]!.writeBytesPerSec = 0
                members[id]!.readOpsPerSec = 0
                members[id]!.writeOpsPerSec = 0
                changes.append(.serverDown(id: id, group: member.group, silentMs: silent))
                groups.insert(member.group)
            }
        }
        // Past the down timeout, remembered members that never reported count as lost: derive
        // every group again, so a recovering one fences them.
        if !startupGraceOver, nowMs - startedMs > downAfterMs {
            startupGraceOver = true
            groups.formUnion(groupStates.keys)
        }
        return changes + rederive(groups: groups)
    }

    /// The state of `group` from its members now.
    public func state(of group: UInt32) -> GroupState {
        GroupState.derive(from: members.values.filter { $0.group == group }.map(\.status))
    }

    /// Derives the state of `groups` again, fencing the members a recovering group leaves
    /// behind (fencing turns `DOWN` into `OFFLINE`, which leaves the state as it is).
    mutating func rederive(groups: Set<UInt32>) -> [Change] {
        var changes: [Change] = []
        // Spares wait in group 0, which is no group: it has no state.
        for group in groups.sorted() where group != HeartbeatReport.spareGroup {
            let new = state(of: group)
            changes += fenceMissedWrites(in: group, state: new)
            let old = groupStates[group]
            if old != new {
                groupStates[group] = new
                changes.append(.groupState(group: group, from: old, to: new))
            }
        }
        return changes
    }

    /// The snapshot served to clients; `historySeconds` > 0 includes that much throughput history.
    public func snapshot(master: String, nowMs: Int64, wallClockMs: Int64, historySeconds: Int = 0) -> ClusterSnapshot {
        var byGroup: [UInt32: [MemberSnapshot]] = [:]
        for group in groupStates.keys { byGroup[group] = [] }
        for member in members.values {
            let r = member.report
            var snapshot = MemberSnapshot(
                id: member.id, addr: member.addr, status: member.status,
                diskTotalBytes: r?.diskTotalBytes ?? 0, diskUsedBytes: r?.diskUsedBytes ?? 0,
                diskFreeBytes: r?.diskFreeBytes ?? 0, chunkCount: r?.chunkCount ?? 0,
                readBytesPerSec: member.readBytesPerSec, writeBytesPerSec: member.writeBytesPerSec,
                readOpsPerSec: member.readOpsPerSec, writeOpsPerSec: member.writeOpsPerSec,
                lastHeartbeatAgeMs: member.lastSeenMs.map { nowMs - $0 } ?? -1,
                crcErrors: r?.crcErrors ?? 0, ioErrors: r?.ioErrors ?? 0, pendingWrites: r?.pendingWrites ?? 0,
                uptimeMs: r?.uptimeMs ?? 0, setStatus: member.setStatus, fencedBy: member.fencedBy)
            snapshot.reclaimableBytes = r?.reclaimableBytes
            snapshot.reclaimedBytes = r?.reclaimedBytes
            snapshot.scrub = r?.scrub
            snapshot.spare = r?.spare
            snapshot.zone = member.failureZone
            if historySeconds > 0 {
                snapshot.history = ThroughputHistory(
                    readBytesPerSec: Array(member.readHistory.suffix(historySeconds)),
                    writeBytesPerSec: Array(member.writeHistory.suffix(historySeconds)))
            }
            byGroup[member.group, default: []].append(snapshot)
        }
        let spares = (byGroup.removeValue(forKey: HeartbeatReport.spareGroup) ?? []).sorted { $0.id < $1.id }
        let groups = byGroup.keys.sorted().map { id -> GroupSnapshot in
            let members = byGroup[id]!.sorted { $0.id < $1.id }
            let reporting = members.filter { $0.diskTotalBytes > 0 }
            let total = reporting.map(\.diskTotalBytes).min() ?? 0
            let used = reporting.map(\.diskUsedBytes).max() ?? 0
            let free = reporting.map(\.diskFreeBytes).min() ?? 0
            var group = GroupSnapshot(
                id: id, state: GroupState.derive(from: members.map(\.status)), members: members,
                diskTotalBytes: total, diskUsedBytes: used, diskFreeBytes: free,
                readBytesPerSec: members.reduce(0) { $0 + $1.readBytesPerSec },
                writeBytesPerSec: members.reduce(0) { $0 + $1.writeBytesPerSec })
            group.reclaimableBytes = members.compactMap(\.reclaimableBytes).max()
            group.reclaimedBytes = members.compactMap(\.reclaimedBytes).max()
            if let since = draining[id] {
                group.draining = true
                group.drainingSinceMs = since
            }
            return group
        }
        var snapshot = ClusterSnapshot(master: master, generatedAtMs: wallClockMs, groups: groups, totals: ClusterTotals(groups: groups))
        snapshot.spares = spares
        return snapshot
    }
}

/// The whole cluster as the master sees it at one instant: what `chunktool status`, the console
/// and imageservers read. Documented field by field in docs/api.md.
public struct ClusterSnapshot: Sendable, Codable, Equatable {
    /// The master's advertised address.
    public var master: String
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    public var generatedAtMs: Int64
    /// Every group, in ascending id order.
    public var groups: [GroupSnapshot]
    /// Sums over all groups and servers.
    public var totals: ClusterTotals
    /// The most recent events, newest first; present when asked for (`?events=N`), so a
    /// dashboard needs one request per refresh.
    public var recentEvents: [ClusterEvent]?
    /// The imageservers that heartbeat to the master, by id (absent from masters before 0.12).
    public var imageservers: [RoleSnapshot]?
    /// The metaservers that heartbeat to the master, by id.
    public var metaservers: [RoleSnapshot]?
    /// The trackers of node agents' swarms that heartbeat to the master, by id, each with its
    /// swarm (``RoleSnapshot/swarm``); nil from masters before 0.16.
    public var trackers: [RoleSnapshot]?
    /// Operator jobs running now and those that ended in the last ten minutes, newest first.
    public var jobs: [JobSnapshot]?
    /// Chunks no member of their group holds intact, oldest first: listed until a member holds
    /// one intact again or none holds it at all (its blobs deleted and collected); nil from
    /// masters before 0.15.
    public var lostChunks: [LostChunk]?
    /// Chunkservers started as spares that no group has taken yet, by id; nil from masters
    /// before 0.15.
    public var spares: [MemberSnapshot]?

    /// Creates a snapshot.
    public init(master: String, generatedAtMs: Int64, groups: [GroupSnapshot], totals: ClusterTotals, recentEvents: [ClusterEvent]? = nil) {
        self.master = master
        self.generatedAtMs = generatedAtMs
        self.groups = groups
        self.totals = totals
        self.recentEvents = recentEvents
    }
}

/// One group and its members.
public struct GroupSnapshot: Sendable, Codable, Equatable {
    /// The group id.
    public var id: UInt32
    /// The state derived from the members.
    public var state: GroupState
    /// Members, in ascending server id order.
    public var members: [MemberSnapshot]
    /// Capacity of the group: the smallest member's total, since every member holds every chunk.
    public var diskTotalBytes: UInt64
    /// Bytes used on the fullest member.
    public var diskUsedBytes: UInt64
    /// Free bytes on the fullest member: what the group can still take.
    public var diskFreeBytes: UInt64
    /// Sum of members' read rates.
    public var readBytesPerSec: Double
    /// Sum of members' write rates.
    public var writeBytesPerSec: Double
    /// What compaction can give back on the member with the most dead bytes.
    public var reclaimableBytes: UInt64?
    /// What compaction gave back on the member that got the most, since it started.
    public var reclaimedBytes: UInt64?
    /// True while the group is drained (`chunktool group drain`): imageservers place no new
    /// chunks in it, reads go on; absent otherwise.
    public var draining: Bool?
    /// When the drain was asked for, in milliseconds since the Unix epoch on the master's clock
    /// (compare with ``ClusterSnapshot/generatedAtMs``); absent when not draining.
    public var drainingSinceMs: Int64?

    /// Creates a group snapshot.
    public init(
        id: UInt32, state: GroupState, members: [MemberSnapshot],
        diskTotalBytes: UInt64, diskUsedBytes: UInt64, diskFreeBytes: UInt64,
        readBytesPerSec: Double, writeBytesPerSec: Double
    ) {
        self.id = id
        self.state = state
        self.members = members
        self.diskTotalBytes = diskTotalBytes
        self.diskUsedBytes = diskUsedBytes
        self.diskFreeBytes = diskFreeBytes
        self.readBytesPerSec = readBytesPerSec
        self.writeBytesPerSec = writeBytesPerSec
    }
}

/// One chunkserver as the master last heard from it.
public struct MemberSnapshot: Sendable, Codable, Equatable {
    /// Stable server id.
    public var id: String
    /// `HOST:PORT` of its HTTP API.
    public var addr: String
    /// Its state (`DOWN` when heartbeats stopped; an operator's setting overrides a reported `RW`).
    public var status: ServerStatus
    /// The operator's setting (`RO`, `OFFLINE`, `TRANSFERRING`), when one is in force.
    public var setStatus: ServerStatus?
    /// For a dead member fenced `OFFLINE`: the id of the replacement it was fenced for.
    public var fencedBy: String?
    /// Usable capacity.
    public var diskTotalBytes: UInt64
    /// Bytes used.
    public var diskUsedBytes: UInt64
    /// Bytes free for chunks.
    public var diskFreeBytes: UInt64
    /// Live chunks.
    public var chunkCount: UInt64
    /// Read throughput over the last heartbeat interval.
    public var readBytesPerSec: Double
    /// Write throughput over the last heartbeat interval.
    public var writeBytesPerSec: Double
    /// Reads per second over the last heartbeat interval.
    public var readOpsPerSec: Double
    /// Writes per second over the last heartbeat interval.
    public var writeOpsPerSec: Double
    /// Milliseconds since the last heartbeat arrived.
    public var lastHeartbeatAgeMs: Int64
    /// CRC mismatches seen on reads since the server started.
    public var crcErrors: UInt64
    /// Disk errors since the server started.
    public var ioErrors: UInt64
    /// Writes waiting for fsync at the last heartbeat.
    public var pendingWrites: UInt64
    /// Milliseconds the server had been running at its last heartbeat.
    public var uptimeMs: UInt64
    /// Per-second throughput for the most recent seconds, oldest first; present when asked for.
    public var history: ThroughputHistory?
    /// Bytes of deleted chunks and tombstones in its volume files: what compaction can give back.
    public var reclaimableBytes: UInt64?
    /// Bytes of volume files compaction removed since the server started.
    public var reclaimedBytes: UInt64?
    /// The server's background scrub, as its last heartbeat said.
    public var scrub: ScrubReport?
    /// True for a server started as a spare, waiting or given a group (the master fills those).
    public var spare: Bool?
    /// Its failure zone: the one it reported (`--zone`) or was registered with, else its
    /// address's host. No two members of a group share one unless the master allows it.
    public var zone: String?

    /// Creates a member snapshot.
    public init(
        id: String, addr: String, status: ServerStatus,
        diskTotalBytes: UInt64, diskUsedBytes: UInt64, diskFreeBytes: UInt64, chunkCount: UInt64,
        readBytesPerSec: Double, writeBytesPerSec: Double, readOpsPerSec: Double, writeOpsPerSec: Double,
        lastHeartbeatAgeMs: Int64, crcErrors: UInt64, ioErrors: UInt64, pendingWrites: UInt64,
        uptimeMs: UInt64, history: ThroughputHistory? = nil, setStatus: ServerStatus? = nil, fencedBy: String? = nil
    ) {
        self.id = id
        self.addr = addr
        self.status = status
        self.diskTotalBytes = diskTotalBytes
        self.diskUsedBytes = diskUsedBytes
        self.diskFreeBytes = diskFreeBytes
        self.chunkCount = chunkCount
        self.readBytesPerSec = readBytesPerSec
        self.writeBytesPerSec = writeBytesPerSec
        self.readOpsPerSec = readOpsPerSec
        self.writeOpsPerSec = writeOpsPerSec
        self.lastHeartbeatAgeMs = lastHeartbeatAgeMs
        self.crcErrors = crcErrors
        self.ioErrors = ioErrors
        self.pendingWrites = pendingWrites
        self.uptimeMs = uptimeMs
        self.history = history
        self.setStatus = setStatus
        self.fencedBy = fencedBy
    }
}

/// Per-second read and write throughput, oldest first, one value per second.
public struct ThroughputHistory: Sendable, Codable, Equatable {
    /// Read bytes per second.
    public var readBytesPerSec: [Double]
    /// Written bytes per second.
    public var writeBytesPerSec: [Double]

    /// Creates a history.
    public init(readBytesPerSec: [Double], writeBytesPerSec: [Double]) {
        self.readBytesPerSec = readBytesPerSec
        self.writeBytesPerSec = writeBytesPerSec
    }
}

/// Cluster-wide sums.
public struct ClusterTotals: Sendable, Codable, Equatable {
    /// Groups known.
    public var groups: Int
    /// Groups per state.
    public var groupsHealthy: Int
    /// Groups being refilled (`recovering`): writable, a replacement not yet full.
    public var groupsRecovering: Int
    public var groupsDegraded: Int
    public var groupsReadOnly: Int
    public var groupsDown: Int
    /// Servers known, up (heartbeating and not set offline) and not.
    public var servers: Int
    public var serversUp: Int
    public var serversDown: Int
    /// Raw capacity: sums over all servers, every replica counted.
    public var diskTotalBytes: UInt64
    public var diskUsedBytes: UInt64
    /// Usable capacity: each group counted once, as its smallest member (every member holds
    /// every chunk of its group).
    public var usableTotalBytes: UInt64
    /// Bytes of chunks stored, each group counted once (its fullest member).
    public var usableUsedBytes: UInt64
    /// What the cluster can still take: each group's free space (its fullest member's), summed.
    public var usableFreeBytes: UInt64
    public var readBytesPerSec: Double
    public var writeBytesPerSec: Double

    /// Sums up groups.
    public init(groups: [GroupSnapshot]) {
        let members = groups.flatMap(\.members)
        self.groups = groups.count
        self.groupsHealthy = groups.count { $0.state == .healthy }
        self.groupsRecovering = groups.count { $0.state == .recovering }
        self.groupsDegraded = groups.count { $0.state == .degraded }
        self.groupsReadOnly = groups.count { $0.state == .readOnly }
        self.groupsDown = groups.count { $0.state == .down }
        self.servers = members.count
        self.serversUp = members.count { !$0.status.isAbsent }
        self.serversDown = members.count - self.serversUp
        self.diskTotalBytes = members.reduce(0) { $0 + $1.diskTotalBytes }
        self.diskUsedBytes = members.reduce(0) { $0 + $1.diskUsedBytes }
        self.usableTotalBytes = groups.reduce(0) { $0 + $1.diskTotalBytes }
        self.usableUsedBytes = groups.reduce(0) { $0 + $1.diskUsedBytes }
        self.usableFreeBytes = groups.reduce(0) { $0 + $1.diskFreeBytes }
        self.readBytesPerSec = members.reduce(0) { $0 + $1.readBytesPerSec }
        self.writeBytesPerSec = members.reduce(0) { $0 + $1.writeBytesPerSec }
    }

    private enum CodingKeys: String, CodingKey {
        case groups, groupsHealthy, groupsRecovering, groupsDegraded, groupsReadOnly, groupsDown, servers, serversUp, serversDown
        case diskTotalBytes, diskUsedBytes, usableTotalBytes, usableUsedBytes, usableFreeBytes, readBytesPerSec, writeBytesPerSec
    }

    /// Decodes totals; those of a master before 0.12 have no usable figures, which then read 0,
    /// so a newer imageserver or tool still reads an older master's map (upgrade in any order).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        groups = try c.decode(Int.self, forKey: .groups)
        groupsHealthy = try c.decode(Int.self, forKey: .groupsHealthy)
        groupsRecovering = try c.decodeIfPresent(Int.self, forKey: .groupsRecovering) ?? 0
        groupsDegraded = try c.decode(Int.self, forKey: .groupsDegraded)
        groupsReadOnly = try c.decode(Int.self, forKey: .groupsReadOnly)
        groupsDown = try c.decode(Int.self, forKey: .groupsDown)
        servers = try c.decode(Int.self, forKey: .servers)
        serversUp = try c.decode(Int.self, forKey: .serversUp)
        serversDown = try c.decode(Int.self, forKey: .serversDown)
        diskTotalBytes = try c.decode(UInt64.self, forKey: .diskTotalBytes)
        diskUsedBytes = try c.decode(UInt64.self, forKey: .diskUsedBytes)
        usableTotalBytes = try c.decodeIfPresent(UInt64.self, forKey: .usableTotalBytes) ?? 0
        usableUsedBytes = try c.decodeIfPresent(UInt64.self, forKey: .usableUsedBytes) ?? 0
        usableFreeBytes = try c.decodeIfPresent(UInt64.self, forKey: .usableFreeBytes) ?? 0
        readBytesPerSec = try c.decode(Double.self, forKey: .readBytesPerSec)
        writeBytesPerSec = try c.decode(Double.self, forKey: .writeBytesPerSec)
    }
}

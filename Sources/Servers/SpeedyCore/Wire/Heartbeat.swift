/// What a chunkserver tells the master every heartbeat interval.
///
/// Counters are cumulative since the chunkserver started; the master derives rates from the
/// difference between consecutive reports, so a lost heartbeat loses no traffic.
public struct HeartbeatReport: Sendable, Codable, Equatable {
    /// Stable id of the chunkserver (kept in its data directory).
    public var serverId: String
    /// The group the chunkserver belongs to.
    public var group: UInt32
    /// `HOST:PORT` where the chunkserver's HTTP API listens.
    public var addr: String
    /// The chunkserver's own view of its state.
    public var status: ServerStatus
    /// Usable capacity in bytes.
    public var diskTotalBytes: UInt64
    /// Bytes used (of `diskTotalBytes`).
    public var diskUsedBytes: UInt64
    /// Bytes still free for chunks.
    public var diskFreeBytes: UInt64
    /// Live chunks stored.
    public var chunkCount: UInt64
    /// Bytes of live chunk payloads.
    public var chunkBytes: UInt64
    /// Payload bytes served by reads since start.
    public var readBytes: UInt64
    /// Payload bytes written since start.
    public var writeBytes: UInt64
    /// Read requests served since start.
    public var readOps: UInt64
    /// Writes acknowledged since start.
    public var writeOps: UInt64
    /// Reads that found a CRC mismatch since start.
    public var crcErrors: UInt64
    /// Failed disk operations since start.
    public var ioErrors: UInt64
    /// Writes waiting for their fsync right now.
    public var pendingWrites: UInt64
    /// Milliseconds since the chunkserver process started.
    public var uptimeMs: UInt64
    /// Bytes of deleted chunks and tombstones still in volume files: what compaction can give back.
    public var reclaimableBytes: UInt64?
    /// Bytes of volume files compaction removed since the process started.
    public var reclaimedBytes: UInt64?
    /// The background scrub; nil from a server that does not scrub (or not yet).
    public var scrub: ScrubReport?
    /// The group a spare reports while it waits for one: no group serves it.
    public static let spareGroup: UInt32 = 0
    /// True from a server started as a spare (`--spare`), also after the master gave it a
    /// group: a spare waiting for one reports group 0.
    public var spare: Bool?
    /// The failure zone the operator gave the server (`--zone`), named as ``FailureZone`` allows;
    /// nil: the host of `addr` counts (``FailureZone/defaultZone(ofAddress:)``). The master keeps
    /// members of one group in different zones.
    public var zone: String?

    /// Creates a report.
    public init(
        serverId: String, group: UInt32, addr: String, status: ServerStatus,
        diskTotalBytes: UInt64, diskUsedBytes: UInt64, diskFreeBytes: UInt64,
        chunkCount: UInt64, chunkBytes: UInt64,
        readBytes: UInt64, writeBytes: UInt64, readOps: UInt64, writeOps: UInt64,
        crcErrors: UInt64, ioErrors: UInt64, pendingWrites: UInt64, uptimeMs: UInt64,
        reclaimableBytes: UInt64? = nil, reclaimedBytes: UInt64? = nil, scrub: ScrubReport? = nil, spare: Bool? = nil
    ) {
        self.scrub = scrub
        self.spare = spare
        self.reclaimableBytes = reclaimableBytes
        self.reclaimedBytes = reclaimedBytes
        self.serverId = serverId
        self.group = group
        self.addr = addr
        self.status = status
        self.diskTotalBytes = diskTotalBytes
        self.diskUsedBytes = diskUsedBytes
        self.diskFreeBytes = diskFreeBytes
        self.chunkCount = chunkCount
        self.chunkBytes = chunkBytes
        self.readBytes = readBytes
        self.writeBytes = writeBytes
        self.readOps = readOps
        self.writeOps = writeOps
        self.crcErrors = crcErrors
        self.ioErrors = ioErrors
        self.pendingWrites = pendingWrites
        self.uptimeMs = uptimeMs
    }
}

extension HeartbeatReport {
    /// The report of a server still opening its store: status `INIT`, no figures yet.
    public static func initializing(serverId: String, group: UInt32, addr: String) -> HeartbeatReport {
        HeartbeatReport(
            serverId: serverId, group: group, addr: addr, status: .initializing, diskTotalBytes: 0, diskUsedBytes: 0,
            diskFreeBytes: 0, chunkCount: 0, chunkBytes: 0, readBytes: 0, writeBytes: 0, readOps: 0, writeOps: 0,
            crcErrors: 0, ioErrors: 0, pendingWrites: 0, uptimeMs: 0)
    }
}

/// The master's answer to a heartbeat.
public struct HeartbeatReply: Sendable, Codable, Equatable {
    /// The group state the master derived after this report.
    public var groupState: GroupState
    /// Milliseconds the chunkserver should wait before its next heartbeat.
    public var intervalMs: UInt64
    /// The group the master gave a spare, to serve from now on; nil for everyone else.
    public var group: UInt32?
    /// The addresses (`HOST:PORT`) of every server the master lists in the sender's group, the
    /// sender among them: the members a chained PUT may be passed on to. Nil from a master older
    /// than this field.
    public var members: [String]?

    /// Creates a reply.
    public init(groupState: GroupState, intervalMs: UInt64, group: UInt32? = nil, members: [String]? = nil) {
        self.groupState = groupState
        self.intervalMs = intervalMs
        self.group = group
        self.members = members
    }
}

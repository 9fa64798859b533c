/// The roles besides the chunkservers that report to the master: imageservers, metaservers, and
/// the trackers of node agents' swarms (after 0.15; an older master refuses a tracker's heartbeat).
public enum FrontRole: String, Sendable, Codable, Equatable, CaseIterable {
    case imageserver, metaserver, tracker
}

/// What an imageserver or a metaserver tells the master every heartbeat interval
/// (`POST /v1/roles/heartbeat`). Counters are cumulative since the process started; the master
/// turns them into rates, as it does for chunkservers.
public struct RoleReport: Sendable, Codable, Equatable {
    /// Which role sends it.
    public var role: FrontRole
    /// Stable id of the process (`--id`; by default the role and its address).
    public var id: String
    /// `HOST:PORT` where it listens.
    public var addr: String
    /// Speedy's version.
    public var version: String
    /// Milliseconds since the process started.
    public var uptimeMs: UInt64
    /// Requests answered since start.
    public var requests: UInt64
    /// Answers with a 4xx status since start.
    public var clientErrors: UInt64
    /// Answers with a 5xx status since start.
    public var serverErrors: UInt64
    /// Request body bytes received since start (pushes, on an imageserver).
    public var bytesIn: UInt64
    /// Response body bytes sent since start (pulls, on an imageserver).
    public var bytesOut: UInt64
    /// Upload bodies streaming in right now (imageserver).
    public var openUploads: UInt64
    /// Resident memory, in bytes.
    public var residentBytes: UInt64
    /// Whether it can do its work now (`/readyz`), and if not, why.
    public var ready: Bool
    public var notReadyReason: String?
    /// The last report of a role stopping cleanly: the master takes it off the map at once
    /// rather than show it down (absent, and ignored, before 0.14).
    public var leaving: Bool?
    /// A tracker's swarm at the time of the report (absent from every other role, and from
    /// before 0.16).
    public var swarm: SwarmSummary?

    /// Creates a report.
    public init(
        role: FrontRole, id: String, addr: String, version: String, uptimeMs: UInt64, requests: UInt64, clientErrors: UInt64,
        serverErrors: UInt64, bytesIn: UInt64, bytesOut: UInt64, openUploads: UInt64, residentBytes: UInt64, ready: Bool,
        notReadyReason: String? = nil
    ) {
        self.role = role
        self.id = id
        self.addr = addr
        self.version = version
        self.uptimeMs = uptimeMs
        self.requests = requests
        self.clientErrors = clientErrors
        self.serverErrors = serverErrors
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.openUploads = openUploads
        self.residentBytes = residentBytes
        self.ready = ready
        self.notReadyReason = notReadyReason
    }

    /// Longest id, address, version or reason the master keeps.
    public static let maxText = 200

    /// The report with its texts made printable (see ``PrintableText``).
    public var cleaned: RoleReport {
        var report = self
        report.id = PrintableText.clean(id, limit: Self.maxText)
        report.version = PrintableText.clean(version, limit: Self.maxText)
        report.notReadyReason = notReadyReason.map { PrintableText.clean($0, limit: Self.maxText) }
        return report
    }
}

/// An imageserver or metaserver as the master last heard from it: the `imageservers` and
/// `metaservers` arrays of the cluster snapshot (docs/api.md).
public struct RoleSnapshot: Sendable, Codable, Equatable {
    /// Its id.
    public var id: String
    /// `HOST:PORT` where it listens.
    public var addr: String
    /// `UP` while heartbeats arrive, `DOWN` once silent longer than the master's down timeout.
    public var status: RoleStatus
    /// Milliseconds since its last heartbeat arrived.
    public var lastHeartbeatAgeMs: Int64
    /// Speedy's version.
    public var version: String
    /// Milliseconds it had been running at its last heartbeat.
    public var uptimeMs: UInt64
    /// Whether it said it can do its work, and if not, why.
    public var ready: Bool
    public var notReadyReason: String?
    /// Rates over the last heartbeat interval.
    public var requestsPerSec: Double
    public var clientErrorsPerSec: Double
    public var serverErrorsPerSec: Double
    /// Bytes received per second (pushes, on an imageserver).
    public var bytesInPerSec: Double
    /// Bytes sent per second (pulls, on an imageserver).
    public var bytesOutPerSec: Double
    /// Upload bodies streaming in at its last heartbeat.
    public var openUploads: UInt64
    /// Resident memory at its last heartbeat.
    public var residentBytes: UInt64
    /// A tracker's swarm as its last heartbeat reported it; nil for other roles.
    public var swarm: SwarmSummary?

    /// Creates a snapshot.
    public init(
        id: String, addr: String, status: RoleStatus, lastHeartbeatAgeMs: Int64, version: String, uptimeMs: UInt64, ready: Bool,
        notReadyReason: String?, requestsPerSec: Double, clientErrorsPerSec: Double, serverErrorsPerSec: Double,
        bytesInPerSec: Double, bytesOutPerSec: Double, openUploads: UInt64, residentBytes: UInt64
    ) {
        self.id = id
        self.addr = addr
        self.status = status
        self.lastHeartbeatAgeMs = lastHeartbeatAgeMs
        self.version = version
        self.uptimeMs = uptimeMs
        self.ready = ready
        self.notReadyReason = notReadyReason
        self.requestsPerSec = requestsPerSec
        self.clientErrorsPerSec = clientErrorsPerSec
        self.serverErrorsPerSec = serverErrorsPerSec
        self.bytesInPerSec = bytesInPerSec
        self.bytesOutPerSec = bytesOutPerSec
        self.openUploads = openUploads
        self.residentBytes = residentBytes
    }
}

/// Whether an imageserver or metaserver is heard from.
public enum RoleStatus: String, Sendable, Codable, Equatable {
    /// Heartbeats arrive.
    case up = "UP"
    /// Silent longer than the master's down timeout.
    case down = "DOWN"
}

/// The master's answer to a role heartbeat.
public struct RoleHeartbeatReply: Sendable, Codable, Equatable {
    /// Milliseconds the role should wait before its next heartbeat.
    public var intervalMs: UInt64

    /// Creates a reply.
    public init(intervalMs: UInt64) { self.intervalMs = intervalMs }
}

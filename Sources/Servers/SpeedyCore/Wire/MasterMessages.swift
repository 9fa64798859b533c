/// A range of file ids leased to one writer: `start ..< start + count` are its alone.
public struct FileIdLease: Sendable, Codable, Equatable {
    /// First id of the range.
    public var start: UInt64
    /// Number of ids in the range.
    public var count: UInt64

    /// Creates a lease.
    public init(start: UInt64, count: UInt64) {
        self.start = start
        self.count = count
    }

    /// The ids as a range.
    public var range: Range<UInt64> { start ..< start + count }
}

/// One entry of the master's event log: server up/down, state changes, admin actions.
public struct ClusterEvent: Sendable, Codable, Equatable {
    /// Increasing id; pass the last one seen as `after` to page.
    public var id: Int64
    /// When it happened, in milliseconds since the Unix epoch.
    public var timeMs: Int64
    /// What happened, e.g. `server-up`, `server-down`, `status-change`, `group-state`.
    public var kind: String
    /// The server concerned, if any.
    public var serverId: String?
    /// The group concerned, if any.
    public var group: UInt32?
    /// A sentence for people.
    public var message: String

    /// Creates an event.
    public init(id: Int64, timeMs: Int64, kind: String, serverId: String?, group: UInt32?, message: String) {
        self.id = id
        self.timeMs = timeMs
        self.kind = kind
        self.serverId = serverId
        self.group = group
        self.message = message
    }
}

/// A page of events, oldest first.
public struct EventPage: Sendable, Codable, Equatable {
    /// The events.
    public var events: [ClusterEvent]

    /// Creates a page.
    public init(events: [ClusterEvent]) { self.events = events }
}

/// The JSON body of every error response from a Speedy server other than the OCI API.
public struct ErrorBody: Sendable, Codable, Equatable {
    /// A stable upper-case code scripts can match, e.g. `CHUNK_UNKNOWN`.
    public var code: String
    /// A sentence for people.
    public var message: String
    /// What the error is about, for programs: a digest, an id, an offset.
    public var detail: String?

    /// Creates an error body.
    public init(code: String, message: String, detail: String? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
    }
}

/// Names of the HTTP headers Speedy's internal APIs use.
public enum SpeedyHeader {
    /// CRC-32C of a chunk payload, as 8 lower-case hex digits.
    public static let crc32c = "X-Speedy-Crc32c"
    /// On a chunk PUT: the members after this one in the write chain, which this chunkserver
    /// streams the chunk on to (see ``ReplicationChain``).
    public static let chain = "X-Speedy-Chain"
    /// On a chunk PUT's answer: how many members, this one included, hold the chunk durable.
    public static let replicas = "X-Speedy-Replicas"
    /// On a chained chunk PUT: milliseconds the sender waits for the answer. A member gives the
    /// next one less, so an answer (a failure included) always comes back before its caller gives up.
    public static let timeoutMs = "X-Speedy-Timeout-Ms"
    /// On a chunk GET: ``readUnchecked`` or ``readVerify``; absent, the chunkserver checks the
    /// stored bytes against their CRC and sends them.
    public static let read = "X-Speedy-Read"
    /// ``read``: the chunkserver sends the stored bytes straight from its volume file
    /// (`sendfile`) without checking their CRC. The reader checks them against ``crc32c``
    /// before using them, and on a mismatch asks for a ``readVerify`` read.
    public static let readUnchecked = "unchecked"
    /// ``read``: the chunkserver checks its copy and answers `200` with the CRC and no body, or
    /// `CHUNK_CORRUPT`/`IO_ERROR` after reporting the copy damaged (a reader's "check yours").
    public static let readVerify = "verify"
    /// Who sends an administrative request (`user@host (tool)`), for the event log.
    public static let actor = "X-Speedy-Actor"
    /// On a standby master's 503 `NOT_LEADER`: the leader's base URL, when one holds the lease.
    public static let leader = "X-Speedy-Leader"

    /// The actor named by a request header, made safe for a log line (printable ASCII, at most
    /// 100 characters); nil when absent or empty.
    public static func actor(from header: String?) -> String? {
        guard let header else { return nil }
        let clean = PrintableText.clean(header, limit: 100)
        return clean.isEmpty ? nil : clean
    }
}

/// Formats and parses the 8-hex-digit CRC form used in headers and listings.
public enum CRCFormat {
    /// `0x1A2B` → `"00001a2b"`.
    public static func hex(_ crc: UInt32) -> String {
        let s = String(crc, radix: 16)
        return String(repeating: "0", count: 8 - s.count) + s
    }

    /// Parses 1 to 8 hex digits; nil for anything else.
    public static func parse(_ text: String) -> UInt32? {
        guard (1...8).contains(text.count) else { return nil }
        return UInt32(text, radix: 16)
    }
}

/// Body of `POST /v1/groups`: creates an empty group that chunkservers can then join.
public struct GroupCreation: Sendable, Codable, Equatable {
    /// The new group's id.
    public var id: UInt32

    /// Creates the request.
    public init(id: UInt32) { self.id = id }
}

/// Body of `POST /v1/servers`: registers a chunkserver with the master ahead of its heartbeats.
public struct ServerRegistration: Sendable, Codable, Equatable {
    /// The server's id (its data directory's `server-id` file; `GET /v1/stats` on it says it).
    public var id: String
    /// The group it serves.
    public var group: UInt32
    /// `HOST:PORT` of its HTTP API.
    public var addr: String
    /// `TRANSFERRING` to have it filled by `transfer` before it serves reads; nil lets the master
    /// decide (`TRANSFERRING` when the group already holds chunks, else as reported).
    public var status: ServerStatus?
    /// Its failure zone, for a server that reports none of its own (no `--zone`); nil: the host
    /// of `addr` counts. A zone the server reports later takes its place.
    public var zone: String?

    /// Creates the request.
    public init(id: String, group: UInt32, addr: String, status: ServerStatus? = nil, zone: String? = nil) {
        self.id = id
        self.group = group
        self.addr = addr
        self.status = status
        self.zone = zone
    }
}

/// Body of `POST /v1/servers/{id}/status`: an operator's setting for one server.
///
/// `RW` clears any setting (the server's own report counts again); `RO`, `OFFLINE` and
/// `TRANSFERRING` override a reported `RW` until changed.
public struct StatusSetting: Sendable, Codable, Equatable {
    /// One of `RW`, `RO`, `OFFLINE`, `TRANSFERRING`.
    public var status: ServerStatus

    /// Creates the request.
    public init(status: ServerStatus) { self.status = status }

    /// The statuses an operator may set.
    public static let settable: [ServerStatus] = [.readWrite, .readOnly, .offline, .transferring]
}

/// An event another role reports for the master's event log (`POST /v1/events`): what garbage
/// collection freed, a volume compacted.
public struct EventReport: Sendable, Codable, Equatable {
    /// Kinds other roles may report.
    public static let kinds: Set<String> = ["gc", "retention", "sync", "volume-compacted", "chunk-damaged"]
    /// Longest message kept.
    public static let maxMessage = 1000

    /// One of ``kinds``.
    public var kind: String
    /// The server concerned, if any.
    public var serverId: String?
    /// The group concerned, if any.
    public var group: UInt32?
    /// A sentence for people.
    public var message: String

    /// Creates a report.
    public init(kind: String, serverId: String? = nil, group: UInt32? = nil, message: String) {
        self.kind = kind
        self.serverId = serverId
        self.group = group
        self.message = message
    }
}

/// Text from another process made safe for a log line, an event and a terminal: printable ASCII
/// only (no newline to forge a line, no escape to drive a terminal), cut to a length.
public enum PrintableText {
    /// `text` without control and non-ASCII characters, at most `limit` characters.
    public static func clean(_ text: String, limit: Int) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.lazy.filter { (0x20..<0x7f).contains($0.value) }.prefix(limit)))
    }
}

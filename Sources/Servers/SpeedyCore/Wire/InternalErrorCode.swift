/// Every error code the internal APIs (chunkservers, the chunkmaster, the metaserver) answer with,
/// declared once with the HTTP status it is sent with and what it means: servers answer with
/// these values, and clients and tools match them, never a string written again
/// (distribution's `errcode.Register` is the model). docs/api.md's table lists each one;
/// `ErrorCodeDocsTests` fails when it does not.
public enum InternalErrorCode: String, CaseIterable, Sendable {
    // Any role
    case badRequest = "BAD_REQUEST"
    case bodyTooLarge = "BODY_TOO_LARGE"
    case unauthorized = "UNAUTHORIZED"
    case forbidden = "FORBIDDEN"
    // Chunkservers
    case groupUnknown = "GROUP_UNKNOWN"
    case chunkUnknown = "CHUNK_UNKNOWN"
    case chunkExists = "CHUNK_EXISTS"
    case chunkTooLarge = "CHUNK_TOO_LARGE"
    case checksumMismatch = "CHECKSUM_MISMATCH"
    case chunkCorrupt = "CHUNK_CORRUPT"
    case readOnly = "READ_ONLY"
    case ioError = "IO_ERROR"
    case shuttingDown = "SHUTTING_DOWN"
    case crcDiffers = "CRC_DIFFERS"
    case chainFailed = "CHAIN_FAILED"
    // The chunkmaster
    case notLeader = "NOT_LEADER"
    case notSaved = "NOT_SAVED"
    case leaseFailed = "LEASE_FAILED"
    case rolesFull = "ROLES_FULL"
    case serverUnknown = "SERVER_UNKNOWN"
    case groupExists = "GROUP_EXISTS"
    case serverRetired = "SERVER_RETIRED"
    case serverExists = "SERVER_EXISTS"
    case statusInvalid = "STATUS_INVALID"
    case serverServing = "SERVER_SERVING"
    case groupNotEmpty = "GROUP_NOT_EMPTY"
    case zoneConflict = "ZONE_CONFLICT"
    // The metaserver (``MetadataError``)
    case blobUnknown = "BLOB_UNKNOWN"
    case manifestUnknown = "MANIFEST_UNKNOWN"
    case nameUnknown = "NAME_UNKNOWN"
    case uploadUnknown = "BLOB_UPLOAD_UNKNOWN"
    case uploadOffsetMismatch = "UPLOAD_OFFSET_MISMATCH"
    case tooManyUploads = "TOO_MANY_UPLOADS"
    case metadataUnavailable = "UNAVAILABLE"
    // The tracker
    case swarmFull = "SWARM_FULL"

    /// The HTTP status the code is sent with.
    public var status: Int {
        switch self {
        case .badRequest, .checksumMismatch, .statusInvalid: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .groupUnknown, .chunkUnknown, .serverUnknown, .blobUnknown, .manifestUnknown, .nameUnknown, .uploadUnknown: 404
        case .chunkExists, .groupExists, .serverRetired, .serverExists, .serverServing, .groupNotEmpty, .zoneConflict, .uploadOffsetMismatch: 409
        case .crcDiffers: 412
        case .bodyTooLarge, .chunkTooLarge: 413
        case .chunkCorrupt, .ioError: 500
        case .chainFailed: 502
        case .tooManyUploads: 429
        case .shuttingDown, .notLeader, .notSaved, .leaseFailed, .rolesFull, .metadataUnavailable, .swarmFull: 503
        case .readOnly: 507
        }
    }

    /// What the code means, for the docs.
    public var meaning: String {
        switch self {
        case .badRequest: "a malformed request: a bad number, name or body"
        case .bodyTooLarge: "a JSON body over the route's limit"
        case .unauthorized: "no cluster secret (or, with a role table, role secret), or a wrong one; or a chunk ticket malformed, forged or expired (the message says which)"
        case .forbidden: "a good chunk ticket used for anything but a `GET` or `HEAD` of the one chunk it names; a role calling a route its role may not; a chain naming a host outside the group (docs/security.md, \"Roles\")"
        case .groupUnknown: "a chunkserver asked about a group it does not serve; the master: no such group"
        case .chunkUnknown: "no such chunk on this chunkserver"
        case .chunkExists: "a chunk is already stored under that key"
        case .chunkTooLarge: "a chunk over the chunkserver's limit"
        case .checksumMismatch: "the bytes sent do not match the CRC sent with them"
        case .chunkCorrupt: "the stored copy fails its CRC; read another member"
        case .readOnly: "the chunkserver takes no writes (disk full or failing)"
        case .ioError: "a disk read or write failed"
        case .shuttingDown: "the chunkserver is stopping"
        case .crcDiffers: "a conditional delete found other bytes under the key; nothing deleted"
        case .chainFailed: "a chain write did not reach every member after this one"
        case .notLeader: "this master is a standby, or has just taken the lead; `X-Speedy-Leader` names the leader"
        case .notSaved: "an administrative change could not be saved, so it was not made"
        case .leaseFailed: "file ids could not be reserved in the master's database"
        case .rolesFull: "the master keeps no more imageservers and metaservers"
        case .serverUnknown: "no such chunkserver"
        case .groupExists: "the group exists already"
        case .serverRetired: "the server was removed from the cluster; its heartbeats are refused"
        case .serverExists: "a server with that id or address is registered already"
        case .statusInvalid: "a status an operator cannot set"
        case .serverServing: "the server is up; only a DOWN or OFFLINE one can be removed"
        case .groupNotEmpty: "only an empty group can be removed"
        case .zoneConflict: "the server would share a failure zone with another member of its group (`--zone`); the message names both. The master's `--allow-same-zone` allows it"
        case .blobUnknown: "no such blob (in that repository); `detail` is its digest"
        case .manifestUnknown: "no such manifest or tag; `detail` is the reference"
        case .nameUnknown: "no such repository; `detail` is its name"
        case .uploadUnknown: "no such upload session, or it has ended; `detail` is its id"
        case .uploadOffsetMismatch: "an append expected another offset; `detail` is `ID OFFSET`, where the session is"
        case .tooManyUploads: "an upload cap is reached (per repository or per client); `detail` says which"
        case .metadataUnavailable: "the metaserver's database does not answer; ask another metaserver"
        case .swarmFull: "the tracker keeps no more agents (100,000) or bitfields (2 GiB); the agent goes on without peers until some are forgotten"
        }
    }
}

extension ErrorBody {
    /// The body's code, when it is one of the internal APIs'.
    public var internalCode: InternalErrorCode? { InternalErrorCode(rawValue: code) }
}

/// Where a blob's bytes lie, and the tickets to read them: what the imageserver's
/// `GET /v2/<name>/_speedy/chunks/<digest>` answers to a client that may pull the blob, so that a
/// node agent (`speedy peer`) can read the chunks straight from the chunkservers without the
/// cluster secret.
///
/// Each chunk's ``Entry/ticket`` is sent to a chunkserver as `Authorization: SpeedyTicket <ticket>`
/// and lets its bearer `GET` or `HEAD` that one chunk (`/v1/chunks/{group}/{fileId}`) until
/// ``expiresMs``, and nothing else. In a cluster run without a secret (`--insecure`) the tickets
/// are empty strings and the chunkservers ask for none.
public struct ChunkMap: Sendable, Equatable, Codable {
    /// The blob's digest, `sha256:…`.
    public var digest: String
    /// The blob's size in bytes: the sum of the chunks' lengths.
    public var size: UInt64
    /// When every ticket of the map stops working: wall clock milliseconds since 1970.
    public var expiresMs: Int64
    /// The blob's chunks in blob order: their bytes, concatenated, are the blob.
    public var chunks: [Entry]

    /// Creates a map.
    public init(digest: String, size: UInt64, expiresMs: Int64, chunks: [Entry]) {
        self.digest = digest
        self.size = size
        self.expiresMs = expiresMs
        self.chunks = chunks
    }

    /// One chunk of the blob: where it is, how to check it, and the ticket to read it.
    public struct Entry: Sendable, Equatable, Codable {
        /// The chunkserver group holding every replica of the chunk.
        public var group: UInt32
        /// The chunk's file id within the cluster.
        public var fileId: UInt64
        /// The chunk's length in bytes.
        public var length: UInt32
        /// The chunk's CRC-32C (Castagnoli), as the chunkservers compute it and send it in
        /// `X-Speedy-CRC32C`.
        public var crc: UInt32
        /// Base URLs (`http://host:port` or `https://host:port`) of the group's members that serve
        /// reads, best first; empty when none is up.
        public var members: [String]
        /// Authorizes `GET` and `HEAD` of this one chunk until ``ChunkMap/expiresMs``; empty when
        /// the cluster runs without a secret.
        public var ticket: String

        /// Creates an entry.
        public init(group: UInt32, fileId: UInt64, length: UInt32, crc: UInt32, members: [String], ticket: String) {
            self.group = group
            self.fileId = fileId
            self.length = length
            self.crc = crc
            self.members = members
            self.ticket = ticket
        }

        /// The chunk's key on the chunkservers.
        public var key: ChunkKey { ChunkKey(group: group, fileId: fileId) }
    }
}

extension ChunkMap {
    /// The `Authorization` scheme a ticket is sent with: `Authorization: SpeedyTicket <ticket>`.
    public static let ticketScheme = "SpeedyTicket"

    /// The `Authorization` header value that carries `ticket`.
    public static func authorization(ticket: String) -> String { ticketScheme + " " + ticket }
}

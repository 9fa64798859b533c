import Foundation

/// Who may call a cluster's internal ports: for each role and each kind of port (its
/// *audience*), the SHA-256 of the credential the role sends there, and for imageservers the
/// Ed25519 key their chunk tickets are checked with.
///
/// A role never sends its secret: it sends each kind of port a credential derived from it for
/// that kind (`ClusterCredential` in SpeedyClients), so a port broken into learns nothing that
/// opens another kind of port. The file (`--role-table`, made by `speedy credentials`) holds one
/// entry per line:
///
///     # role        port          SHA-256 of the credential, hex                                     [ticket key]
///     imageserver   chunkserver   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  ed25519:<43 base64url>
///     imageserver   metaserver    5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
///     operator      *             …
///
/// The port `*` stands for every kind and takes the secret itself (for a person's `curl`): weaker,
/// since any port it is sent to then holds the secret. Blank lines and lines starting with `#`
/// are ignored; a role may have several lines per port (old and new while rotating). The file
/// holds no secret: a hash of a credential derived from a 256-bit random secret opens nothing, so
/// every host can have it.
public struct RoleTable: Sendable, Equatable {
    /// One line: a role, the kind of port, the hash of a credential, and an imageserver's ticket key.
    public struct Entry: Sendable, Equatable {
        /// The role the credential belongs to.
        public var role: ClusterRole
        /// The kind of port it opens; nil for every kind (`*`, the secret itself).
        public var audience: ClusterRole?
        /// SHA-256 of the credential's bytes (32 bytes).
        public var secretHash: [UInt8]
        /// An imageserver's Ed25519 public key for chunk tickets (32 bytes); nil for other roles.
        public var ticketKey: [UInt8]?

        /// An entry from its parts; `secretHash` and `ticketKey` must be 32 bytes, `audience` a
        /// role that serves a port.
        public init(role: ClusterRole, audience: ClusterRole?, secretHash: [UInt8], ticketKey: [UInt8]? = nil) {
            precondition(secretHash.count == 32 && (ticketKey?.count ?? 32) == 32 && audience?.servesAPort != false)
            self.role = role
            self.audience = audience
            self.secretHash = secretHash
            self.ticketKey = ticketKey
        }
    }

    /// Why a table's text cannot be used.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Line `number` (from 1) is not an entry; `reason` says why.
        case line(number: Int, reason: String)
        /// No entry at all.
        case empty
        /// More than ``RoleTable/maximumEntries`` entries.
        case tooMany

        public var description: String {
            switch self {
            case .line(let number, let reason): "line \(number): \(reason)"
            case .empty: "no entry (each line: ROLE PORT SHA256-HEX [ed25519:KEY])"
            case .tooMany: "more than \(RoleTable.maximumEntries) entries"
            }
        }
    }

    /// Seven roles, five kinds of port, two lines each while rotating: more is a file gone wrong.
    public static let maximumEntries = 256
    /// The longest line read.
    static let maximumLineBytes = 256
    private static let ticketKeyPrefix = "ed25519:"
    private static let anyPort = "*"

    /// The entries, in file order.
    public let entries: [Entry]

    /// A table of `entries`; ``parse(_:)`` refuses one that holds a hash twice.
    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads a table's text (see the type's description); refuses the whole text for one bad line.
    public static func parse(_ text: String) throws(ParseError) -> RoleTable {
        var entries: [Entry] = []
        var hashes: Set<[UInt8]> = []
        // Lines end at LF (a CR before it is a blank); no other character ends one, so line
        // numbers are an editor's.
        for (index, raw) in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            guard raw.count <= maximumLineBytes else { throw .line(number: index + 1, reason: "longer than \(maximumLineBytes) bytes") }
            let fields = raw.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") })
            guard let first = fields.first, first.first != UInt8(ascii: "#") else { continue }
            let entry = try entry(fields.map { Substring(decoding: $0, as: UTF8.self) }, number: index + 1)
            guard hashes.insert(entry.secretHash).inserted else { throw .line(number: index + 1, reason: "the same hash twice") }
            guard entries.count < maximumEntries else { throw .tooMany }
            entries.append(entry)
        }
        guard !entries.isEmpty else { throw .empty }
        return RoleTable(entries: entries)
    }

    private static func entry(_ fields: [Substring], number: Int) throws(ParseError) -> Entry {
        guard fields.count == 3 || fields.count == 4 else {
            throw .line(number: number, reason: "expected ROLE PORT SHA256-HEX [ed25519:KEY], got \(fields.count) fields")
        }
        guard let role = ClusterRole(rawValue: String(fields[0])) else {
            throw .line(number: number, reason: "unknown role; one of \(ClusterRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let audience = ClusterRole(rawValue: String(fields[1]))
        guard fields[1] == anyPort || audience?.servesAPort == true else {
            throw .line(number: number, reason: "the port is * or one of \(ClusterRole.servers.map(\.rawValue).joined(separator: ", "))")
        }
        guard let hash = Hex.decode(fields[2]), hash.count == 32 else {
            throw .line(number: number, reason: "the credential's SHA-256 must be 64 lower-case hex digits")
        }
        guard fields.count == 4 else { return Entry(role: role, audience: audience, secretHash: hash) }
        guard role == .imageserver else { throw .line(number: number, reason: "only an imageserver has a ticket key") }
        guard fields[3].hasPrefix(ticketKeyPrefix), let key = Base64URL.decode(ArraySlice(fields[3].utf8.dropFirst(ticketKeyPrefix.utf8.count))),
            key.count == 32
        else { throw .line(number: number, reason: "a ticket key is ed25519: and 43 base64url characters") }
        return Entry(role: role, audience: audience, secretHash: hash, ticketKey: key)
    }

    /// The text of the table: a header comment and a line per entry; ``parse(_:)`` reads it back.
    public var text: String {
        var out = "# speedy role table: who may call the internal ports (docs/security.md, \"Roles\")\n"
        out += "# role        port          SHA-256 of the credential                                         [ticket key]\n"
        for entry in entries {
            let port = entry.audience?.rawValue ?? Self.anyPort
            var line = entry.role.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0) + " "
                + port.padding(toLength: 13, withPad: " ", startingAt: 0) + " " + entry.secretHash.hexString
            if let key = entry.ticketKey { line += "  " + Self.ticketKeyPrefix + Base64URL.encode(key) }
            out += line + "\n"
        }
        return out
    }

    /// The role whose credential for ports of kind `audience` `header` (an `Authorization` value,
    /// `Bearer <credential>`) carries; nil for none. Every entry is compared, each in constant time.
    public func role(carriedBy header: String?, at audience: ClusterRole) -> ClusterRole? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        let presented = Self.hash(header.utf8.dropFirst(7))
        var found: ClusterRole?
        for entry in entries where ConstantTime.equal(entry.secretHash, presented) && (entry.audience ?? audience) == audience {
            if found == nil { found = entry.role }
        }
        return found
    }

    /// The imageservers' chunk-ticket keys (Ed25519 public keys, 32 bytes each).
    public var ticketKeys: [[UInt8]] { entries.compactMap(\.ticketKey) }

    /// SHA-256 of a credential's bytes.
    public static func hash(_ credential: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256Hasher()
        hasher.update(Array(credential))
        return hasher.finalizeBytes()
    }
}

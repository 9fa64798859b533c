import Foundation

/// A kind of process that calls the cluster's internal APIs, as its credential names it.
///
/// With a role table (``RoleTable``) each role holds a secret of its own, and an internal port
/// lets a caller do only what its role needs (``ServerSupport/RouteAuthorization``): an
/// imageserver does not retire servers, a chunkserver does not rewrite blob records. `operator`
/// is the people and their tools (chunktool, transfer, speedy-console): it may call every route.
/// `monitor` is what scrapes metrics (Prometheus): `/metrics` on every port, and nothing else.
public enum ClusterRole: String, Sendable, CaseIterable, Codable, Comparable, CustomStringConvertible {
    case chunkmaster, metaserver, chunkserver, imageserver, tracker, monitor, `operator`

    public static func < (a: ClusterRole, b: ClusterRole) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    public var description: String { rawValue }
}

/// Who may call a cluster's internal APIs: for each role, the SHA-256 of its secret (and, for
/// imageservers, the Ed25519 key their chunk tickets are checked with).
///
/// The file (`--role-table`, made by `speedy credentials`) holds one entry per line:
///
///     # role        SHA-256 of the role's secret, hex                                 [ticket key]
///     chunkmaster   5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8
///     imageserver   9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  ed25519:<43 base64url>
///
/// Blank lines and lines starting with `#` are ignored; a role may have several lines (its old
/// and new secret while rotating). The file holds no secret: a hash of a 256-bit random secret
/// tells its reader nothing that opens a port, so it can be given to every host, and a host
/// broken into holds its own role's secret only, never another's.
public struct RoleTable: Sendable, Equatable {
    /// One line: a role, the hash of a secret it holds, and the key its chunk tickets verify with.
    public struct Entry: Sendable, Equatable {
        /// The role the secret belongs to.
        public var role: ClusterRole
        /// SHA-256 of the secret's bytes (32 bytes).
        public var secretHash: [UInt8]
        /// An imageserver's Ed25519 public key for chunk tickets (32 bytes); nil for other roles.
        public var ticketKey: [UInt8]?

        /// An entry from its parts; `secretHash` and `ticketKey` must be 32 bytes.
        public init(role: ClusterRole, secretHash: [UInt8], ticketKey: [UInt8]? = nil) {
            precondition(secretHash.count == 32 && (ticketKey?.count ?? 32) == 32)
            self.role = role
            self.secretHash = secretHash
            self.ticketKey = ticketKey
        }

        /// The entry for `secret`, held by `role`.
        public init(role: ClusterRole, secret: ClusterSecret, ticketKey: [UInt8]? = nil) {
            self.init(role: role, secretHash: RoleTable.hash(secret.value), ticketKey: ticketKey)
        }
    }

    /// Why a table's text cannot be used.
    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        /// Line `number` (from 1) is not an entry; `reason` says why.
        case line(number: Int, reason: String)
        /// No entry at all.
        case empty
        /// More than ``RoleTable/maximumEntries`` entries.
        case tooMany(Int)

        public var description: String {
            switch self {
            case .line(let number, let reason): "line \(number): \(reason)"
            case .empty: "no entry (each line: ROLE SHA256-HEX [ed25519:KEY])"
            case .tooMany(let count): "\(count) entries; at most \(RoleTable.maximumEntries)"
            }
        }
    }

    /// More entries than a cluster's roles and a rotation need is a file gone wrong.
    public static let maximumEntries = 64
    /// The longest line read.
    static let maximumLineBytes = 256
    private static let ticketKeyPrefix = "ed25519:"

    /// The entries, in file order.
    public let entries: [Entry]

    /// A table of `entries`; a secret hash may appear once.
    public init(entries: [Entry]) {
        self.entries = entries
    }

    /// Reads a table's text (see the type's description); refuses the whole text for one bad line.
    public static func parse(_ text: String) throws(ParseError) -> RoleTable {
        var entries: [Entry] = []
        for (index, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            guard raw.utf8.count <= maximumLineBytes else { throw .line(number: index + 1, reason: "longer than \(maximumLineBytes) bytes") }
            let line = raw.drop { $0 == " " || $0 == "\t" || $0 == "\r" }
            if line.isEmpty || line.hasPrefix("#") { continue }
            let entry = try entry(line, number: index + 1)
            guard !entries.contains(where: { $0.secretHash == entry.secretHash }) else {
                throw .line(number: index + 1, reason: "the same secret hash twice")
            }
            entries.append(entry)
            guard entries.count <= maximumEntries else { throw .tooMany(entries.count) }
        }
        guard !entries.isEmpty else { throw .empty }
        return RoleTable(entries: entries)
    }

    private static func entry(_ line: Substring, number: Int) throws(ParseError) -> Entry {
        let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard fields.count == 2 || fields.count == 3 else {
            throw .line(number: number, reason: "expected ROLE SHA256-HEX [ed25519:KEY], got \(fields.count) fields")
        }
        guard let role = ClusterRole(rawValue: String(fields[0])) else {
            throw .line(number: number, reason: "unknown role; one of \(ClusterRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let hash = Hex.decode(fields[1]), hash.count == 32 else {
            throw .line(number: number, reason: "the secret's SHA-256 must be 64 lower-case hex digits")
        }
        guard fields.count == 3 else { return Entry(role: role, secretHash: hash) }
        guard role == .imageserver else { throw .line(number: number, reason: "only an imageserver has a ticket key") }
        let keyText = fields[2]
        guard keyText.hasPrefix(ticketKeyPrefix), let key = Base64URL.decode(ArraySlice(keyText.utf8.dropFirst(ticketKeyPrefix.utf8.count))),
            key.count == 32
        else { throw .line(number: number, reason: "a ticket key is ed25519: and 43 base64url characters") }
        return Entry(role: role, secretHash: hash, ticketKey: key)
    }

    /// The text of the table: a header comment and a line per entry; ``parse(_:)`` reads it back.
    public var text: String {
        var out = "# speedy role table: who may call the internal APIs (docs/security.md, \"Roles\")\n"
        out += "# role        SHA-256 of the role's secret                                        [ticket key]\n"
        for entry in entries {
            var line = entry.role.rawValue.padding(toLength: 13, withPad: " ", startingAt: 0) + " " + entry.secretHash.hexString
            if let key = entry.ticketKey { line += "  " + Self.ticketKeyPrefix + Base64URL.encode(key) }
            out += line + "\n"
        }
        return out
    }

    /// The role whose secret `header` (an `Authorization` value, `Bearer <secret>`) carries; nil
    /// for none. Every entry is compared, each in constant time.
    public func role(carriedBy header: String?) -> ClusterRole? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        let presented = Self.hash(header.utf8.dropFirst(7))
        var found: ClusterRole?
        for entry in entries where ConstantTime.equal(entry.secretHash, presented) && found == nil { found = entry.role }
        return found
    }

    /// The imageservers' chunk-ticket keys (Ed25519 public keys, 32 bytes each).
    public var ticketKeys: [[UInt8]] { entries.compactMap(\.ticketKey) }

    /// SHA-256 of a secret's bytes.
    public static func hash(_ secret: some Sequence<UInt8>) -> [UInt8] {
        var hasher = SHA256Hasher()
        hasher.update(Array(secret))
        return Hex.decode(Substring(hasher.finalize().hex))!
    }

    static func hash(_ secret: String) -> [UInt8] { hash(secret.utf8) }

    /// Why a table file cannot be used.
    public enum LoadError: Error, Sendable, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case invalid(path: String, ParseError)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read the role table \(path): \(reason)"
            case .invalid(let path, let error): "the role table \(path) cannot be used: \(error)"
            }
        }
    }

    /// Reads and parses the table file at `path`.
    public static func load(path: String) throws(LoadError) -> RoleTable {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        guard data.count <= maximumEntries * (maximumLineBytes + 1) * 4 else { throw .unreadable(path: path, reason: "too large") }
        do {
            return try parse(String(decoding: data, as: UTF8.self))
        } catch {
            throw .invalid(path: path, error)
        }
    }
}

/// Lower-case hex, strict: anything but pairs of `0-9a-f` is nil.
enum Hex {
    static func decode(_ text: Substring) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    private static func value(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}

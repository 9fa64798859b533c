import Foundation

/// The registry's users: an htpasswd file of `user:bcrypt-hash` lines (`htpasswd -B` makes them;
/// so does `speedy up --auth`). Other hash kinds (MD5, SHA-1, crypt) are refused when the file is
/// read, since they are too weak to keep.
public struct UserFile: Sendable {
    /// A line that cannot be used.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "htpasswd line \(line): \(reason)" }
    }

    package let hashes: [String: String]

    /// The user names, for logs and tests.
    public var users: [String] { hashes.keys.sorted() }

    /// Parses htpasswd text.
    public init(parsing text: String) throws(ParseError) {
        var hashes: [String: String] = [:]
        for (index, raw) in text.configurationLines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw ParseError(line: index + 1, reason: "expected user:hash") }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard !user.isEmpty, user.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw ParseError(line: index + 1, reason: "user names are printable ASCII without spaces")
            }
            guard Self.isBcrypt(hash) else {
                throw ParseError(line: index + 1, reason: "the hash of \(user) is not bcrypt (make it with `htpasswd -B`)")
            }
            hashes[user] = hash
        }
        self.hashes = hashes
    }

    /// Whether `hash` is a bcrypt hash as htpasswd writes it: `$2a$`, `$2b$` or `$2y$`, two cost
    /// digits, `$`, then 53 characters of bcrypt's base64 (`./A-Za-z0-9`). Counted in bytes: a
    /// fuzzer found 60 characters of which some were not ASCII accepted when characters were counted.
    static func isBcrypt(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, ["$2a$", "$2b$", "$2y$"].contains(where: hash.hasPrefix), bytes[6] == UInt8(ascii: "$") else { return false }
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        func isBase64(_ byte: UInt8) -> Bool {
            isDigit(byte) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a) || byte == 0x2e || byte == 0x2f
        }
        return isDigit(bytes[4]) && isDigit(bytes[5]) && bytes[7...].allSatisfy(isBase64)
    }

    /// The longest password bcrypt hashes whole: it reads 72 bytes and ignores the rest.
    public static let maximumPasswordBytes = 72

    /// Why bcrypt cannot hash `password` faithfully, or nil if it can. bcrypt stops at a NUL
    /// byte and after 72 bytes, so whatever came after would be ignored and anything there
    /// accepted: such passwords are refused when made and never match at login.
    public static func passwordProblem(_ password: String) -> String? {
        if password.utf8.contains(0) { return "the password contains a NUL byte, where bcrypt would stop reading it" }
        let bytes = password.utf8.count
        guard bytes <= maximumPasswordBytes else {
            let limit = maximumPasswordBytes
            return "the password is \(bytes) bytes long; bcrypt reads only the first \(limit), so choose one of at most \(limit) bytes"
        }
        return nil
    }
}

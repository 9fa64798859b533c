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
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":") else { throw ParseError(line: index + 1, reason: "expected user:hash") }
            let user = String(line[..<colon])
            let hash = String(line[line.index(after: colon)...])
            guard !user.isEmpty, user.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
                throw ParseError(line: index + 1, reason: "user names are printable ASCII without spaces")
            }
            guard ["$2a$", "$2b$", "$2y$"].contains(where: hash.hasPrefix), hash.count == 60 else {
                throw ParseError(line: index + 1, reason: "the hash of \(user) is not bcrypt (make it with `htpasswd -B`)")
            }
            hashes[user] = hash
        }
        self.hashes = hashes
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

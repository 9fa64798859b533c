import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix
import Synchronization

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

    let hashes: [String: String]

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

    /// An htpasswd line for `user` with a bcrypt hash of `password`.
    public static func line(user: String, password: String, cost: UInt8 = 10) -> String {
        "\(user):\(Bcrypt.hash(password, cost: cost))"
    }
}

/// Checks passwords against a ``UserFile``. bcrypt is slow on purpose, so checks run on NIO's
/// thread pool (never on the request's executor), at most ``maximumChecks`` at once (more fail
/// at once: a flood of guesses cannot queue work without bound); a password that checked out is
/// remembered for a while, and one that did not for a few seconds, keyed by a SHA-256 of user
/// and password (the password itself is never kept). An unknown user costs a bcrypt too, so the
/// answer's time does not tell which user names exist.
final class PasswordChecker: Sendable {
    private struct Remembered {
        var users: UserFile
        var verified: [SHA256Digest: ContinuousClock.Instant] = [:]
        var refused: [SHA256Digest: ContinuousClock.Instant] = [:]
        var running = 0
    }

    private let state: Mutex<Remembered>
    /// How long a checked password is trusted without bcrypt.
    let remember: Duration
    /// How long a wrong password is answered without bcrypt.
    let rememberRefusal: Duration = .seconds(5)
    /// bcrypt checks running at once.
    static let maximumChecks = 8
    /// Compared against when the user does not exist (cost 10, like `speedy htpasswd`).
    private static let decoy = Bcrypt.hash("speedy-decoy-password", cost: 10)

    init(users: UserFile, remember: Duration = .seconds(300)) {
        state = Mutex(Remembered(users: users))
        self.remember = remember
    }

    /// Swaps in a re-read user file and forgets every remembered password.
    func replace(_ users: UserFile) { state.withLock { $0 = Remembered(users: users, running: $0.running) } }

    /// Whether `user` is in the file.
    func knows(_ user: String) -> Bool { state.withLock { $0.users.hashes[user] != nil } }

    /// Whether `password` is `user`'s.
    func check(user: String, password: String) async -> Bool {
        let key = SHA256.hash(data: Array("\(user)\u{0}\(password)".utf8))
        let now = ContinuousClock.now
        enum Next { case known(Bool), check(String?), busy }
        let next = state.withLock { s -> Next in
            if let until = s.verified[key], until > now { return .known(s.users.hashes[user] != nil) }
            if let until = s.refused[key], until > now { return .known(false) }
            guard s.running < Self.maximumChecks else { return .busy }
            s.running += 1
            return .check(s.users.hashes[user])
        }
        let hash: String?
        switch next {
        case .known(let answer): return answer
        case .busy: return false
        case .check(let stored): hash = stored
        }
        let ok = (try? await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash ?? Self.decoy) && hash != nil }) ?? false
        state.withLock { s in
            s.running -= 1
            // A bounded memory: drop the expired, and everything if that is not enough.
            for table in [\Remembered.verified, \Remembered.refused] where s[keyPath: table].count >= 10_000 {
                s[keyPath: table] = s[keyPath: table].filter { $0.value > now }
                if s[keyPath: table].count >= 10_000 { s[keyPath: table].removeAll() }
            }
            // Only if the file was not swapped meanwhile (the hash is still this user's).
            guard s.users.hashes[user] == hash else { return }
            if ok { s.verified[key] = now + remember } else { s.refused[key] = now + rememberRefusal }
        }
        return ok
    }
}

import Crypto
import Foundation
import HummingbirdBcrypt
import NIOPosix
import SpeedyCore
import Synchronization

/// Checks passwords against a ``UserFile``, with failed logins limited by a ``LoginLimiter``.
///
/// bcrypt is slow on purpose, so checks run on NIO's thread pool (never on the request's
/// executor), at most ``maximumChecks`` at once. One more is deferred (``LoginDeferred/busy``),
/// never answered "wrong": a flood of guesses cannot queue work without bound, nor make a right
/// password fail. A password that checked out is remembered per user as an HMAC under a random
/// key of this process (the password is never kept, and the HMAC is worthless without the key)
/// until ``remember`` passes, the file is re-read or the user's hash changes; so a user who
/// logged in lately gets in during a flood without a bcrypt. A wrong password is remembered the
/// same way for a few seconds. An unknown user costs a bcrypt too, so the answer's time does not
/// tell which user names exist; passwords bcrypt cannot hash faithfully
/// (``UserFile/passwordProblem(_:)``) never match and cost none.
final class PasswordChecker: Sendable {
    private typealias MAC = HashedAuthenticationCode<SHA256>
    private typealias Instant = ContinuousClock.Instant

    private struct Verified {
        var mac: MAC
        /// The user's hash when checked: a changed hash forgets the password.
        var hash: String
        var until: Instant
    }

    /// What to do with a password, decided under the lock.
    private enum Admission {
        case known(Bool)
        case check(hash: String?)
    }

    private struct State {
        var users: UserFile
        var verified: [String: Verified] = [:]
        var refused: [MAC: Instant] = [:]
        var limiter: LoginLimiter
        var running = 0
    }

    private let state: Mutex<State>
    private let key = SymmetricKey(size: .bits256)
    /// How long a checked password is trusted without bcrypt.
    let remember: Duration
    /// How long a wrong password is answered without bcrypt.
    let rememberRefusal: Duration = .seconds(5)
    /// bcrypt checks running at once (about as many as the thread pool has threads).
    static let maximumChecks = 8
    /// Remembered passwords, right and wrong, at most (each table).
    static let maximumRemembered = 10_000
    /// Compared against when the user does not exist (cost 10, like `speedy htpasswd`).
    private static let decoy = Bcrypt.hash("speedy-decoy-password", cost: 10)

    init(users: UserFile, remember: Duration = .seconds(300), limits: LoginLimiter.Limits = .init()) {
        state = Mutex(State(users: users, limiter: LoginLimiter(limits)))
        self.remember = remember
    }

    /// Swaps in a re-read user file and forgets every remembered password. The failure counts
    /// stay: a reload is no reset for a guesser.
    func replace(_ users: UserFile) {
        state.withLock {
            $0.users = users
            $0.verified = [:]
            $0.refused = [:]
        }
    }

    /// Whether `user` is in the file.
    func knows(_ user: String) -> Bool { state.withLock { $0.users.hashes[user] != nil } }

    /// Whether `password` is `user`'s, asked from `address` (a ``ClientNetwork`` key).
    /// - Throws: ``LoginDeferred`` when the password cannot be checked now (never for a wrong one).
    func check(user: String, password: String, from address: String = "unknown") async throws(LoginDeferred) -> Bool {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(user)\u{0}\(password)".utf8), using: key)
        let hashable = UserFile.passwordProblem(password) == nil
        let now = ContinuousClock.now
        let admission = try state.withLock { (s: inout State) throws(LoginDeferred) -> Admission in
            try Self.admit(&s, user: user, address: address, mac: mac, hashable: hashable, now: now)
        }
        let hash: String?
        switch admission {
        case .known(let answer): return answer
        case .check(let stored): hash = stored
        }
        let result = try? await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash ?? Self.decoy) && hash != nil }
        let finished = ContinuousClock.now
        state.withLock { s in
            s.running -= 1
            if let ok = result { record(&s, ok: ok, user: user, address: address, mac: mac, hash: hash, now: finished) }
        }
        // The pool is shutting down: not an answer about the password.
        guard let ok = result else { throw .busy }
        return ok
    }

    /// The order matters: the (user, address) limit comes first, so nobody learns whether a
    /// guess is a remembered password beyond that limit; a remembered password then gets in
    /// whatever the address's other users did; only then the address and user limits, and bcrypt.
    private static func admit(
        _ s: inout State, user: String, address: String, mac: MAC, hashable: Bool, now: Instant
    ) throws(LoginDeferred) -> Admission {
        if let wait = s.limiter.pairWait(user: user, address: address, now: now) { throw .limited(retryAfter: wait) }
        if let known = s.verified[user], known.until > now, known.hash == s.users.hashes[user], known.mac == mac {
            return .known(true)
        }
        if let wait = s.limiter.wait(user: user, address: address, now: now) {
            s.limiter.refusedUnchecked(user: user, address: address, now: now)
            throw .limited(retryAfter: wait)
        }
        if !hashable || (s.refused[mac].map { $0 > now } ?? false) {
            s.limiter.failed(user: user, address: address, now: now)
            return .known(false)
        }
        guard s.running < maximumChecks else { throw .busy }
        s.running += 1
        return .check(hash: s.users.hashes[user])
    }

    /// Counts a bcrypt's answer and remembers it, unless the file changed meanwhile.
    private func record(_ s: inout State, ok: Bool, user: String, address: String, mac: MAC, hash: String?, now: Instant) {
        if ok {
            s.limiter.succeeded(user: user, address: address)
        } else {
            s.limiter.failed(user: user, address: address, now: now)
        }
        guard s.users.hashes[user] == hash else { return }
        if ok, let hash {
            if s.verified.count >= Self.maximumRemembered { s.verified = s.verified.filter { $0.value.until > now } }
            if s.verified.count >= Self.maximumRemembered { s.verified.removeAll() }
            s.verified[user] = Verified(mac: mac, hash: hash, until: now + remember)
        } else if !ok {
            if s.refused.count >= Self.maximumRemembered { s.refused = s.refused.filter { $0.value > now } }
            if s.refused.count >= Self.maximumRemembered { s.refused.removeAll() }
            s.refused[mac] = now + rememberRefusal
        }
    }
}

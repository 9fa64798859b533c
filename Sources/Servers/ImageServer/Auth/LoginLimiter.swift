import Crypto
import Foundation
import HTTPTypes

/// Why a login could not be checked now. The answer to the client is "come back later"
/// (429 or 503 with Retry-After), never "wrong password": a right password must not be
/// told it is wrong because others are guessing.
enum LoginDeferred: Error, Equatable, Sendable {
    /// Every bcrypt check is taken (a flood of guesses, or many logins at once).
    case busy
    /// Too many failed logins from this address (or for this user from suspect addresses).
    case limited(retryAfter: Int)
}

/// Failed logins, counted per (user, address), per address and per user. Each is a bucket of
/// failures that refills at a steady rate: a client gets `burst` wrong guesses at once and then
/// one per `refill`, so a typo costs nothing and a guesser gets few tries, and no limit locks
/// anyone out for longer than one `refill`.
///
/// - Per (user, address): a guesser's tries at one account from one place.
/// - Per address: one place trying many accounts.
/// - Per user: many places trying one account. This one only slows down, and only addresses
///   that failed lately (``suspectFor``): the user, from an address that has not been guessing,
///   is never held up by an attacker elsewhere.
///
/// Addresses are ``ClientNetwork`` keys (an IPv6 client counts by its /64). Every table is
/// bounded (``capacity``); user names are kept as SHA-256 digests, so long names cost no memory.
struct LoginLimiter: Sendable {
    /// The numbers of a limiter: each limit's failures at once (burst), and how often it gets
    /// one back (refill).
    struct Limits: Sendable {
        /// A person's typos never reach it; one account from one address: about 1,400 a day.
        var pairBurst = 10.0
        var pairRefill: Duration = .seconds(60)
        /// Room for several people behind one NAT; one password across many accounts: 6 a minute.
        var addressBurst = 30.0
        var addressRefill: Duration = .seconds(10)
        /// One account from many suspect addresses: 12 a minute.
        var userBurst = 20.0
        var userRefill: Duration = .seconds(5)
        /// How long an address that failed a login counts as suspect for the per-user limit.
        var suspectFor: Duration = .seconds(15 * 60)
        /// Entries per table.
        var capacity = 10_000
    }

    let limits: Limits
    private var pairs: FailureTable<SHA256Digest>
    private var addresses: FailureTable<String>
    private var users: FailureTable<SHA256Digest>

    init(_ limits: Limits = Limits()) {
        self.limits = limits
        pairs = FailureTable(burst: limits.pairBurst, refill: limits.pairRefill, keep: .zero, capacity: limits.capacity)
        addresses = FailureTable(burst: limits.addressBurst, refill: limits.addressRefill, keep: limits.suspectFor, capacity: limits.capacity)
        users = FailureTable(burst: limits.userBurst, refill: limits.userRefill, keep: .zero, capacity: limits.capacity)
    }

    /// Seconds until `user` may try again from `address`, by the (user, address) limit alone;
    /// nil: now. Checked before anything else, remembered passwords included.
    mutating func pairWait(user: String, address: String, now: ContinuousClock.Instant) -> Int? {
        pairs.wait(Self.pairKey(user, address), now: now).map(Self.seconds)
    }

    /// Seconds until a password for `user` from `address` may be checked by bcrypt, by the
    /// per-address and per-user limits; nil: now.
    mutating func wait(user: String, address: String, now: ContinuousClock.Instant) -> Int? {
        if let wait = addresses.wait(address, now: now) { return Self.seconds(wait) }
        guard addresses.failedLately(address, within: limits.suspectFor, now: now) else { return nil }
        return users.wait(Self.userKey(user), now: now).map(Self.seconds)
    }

    /// Counts a wrong password for `user` from `address` against every limit.
    mutating func failed(user: String, address: String, now: ContinuousClock.Instant) {
        pairs.fail(Self.pairKey(user, address), now: now)
        addresses.fail(address, now: now)
        users.fail(Self.userKey(user), now: now)
    }

    /// Counts an attempt that was refused unchecked against its (user, address) limit only, so
    /// an address over its limit cannot keep asking whether a guess is a remembered password.
    mutating func refusedUnchecked(user: String, address: String, now: ContinuousClock.Instant) {
        pairs.fail(Self.pairKey(user, address), now: now)
    }

    /// A right password: the pair's typos are forgiven (not the address's, or a guesser holding
    /// one account of their own could reset their budget by logging in to it).
    mutating func succeeded(user: String, address: String) {
        pairs.forget(Self.pairKey(user, address))
    }

    /// Entries held, per table (for tests: they stay bounded).
    var sizes: (pairs: Int, addresses: Int, users: Int) { (pairs.count, addresses.count, users.count) }

    private static func pairKey(_ user: String, _ address: String) -> SHA256Digest {
        SHA256.hash(data: Array("\(user)\u{0}\(address)".utf8))
    }

    private static func userKey(_ user: String) -> SHA256Digest { SHA256.hash(data: Array(user.utf8)) }

    /// Whole seconds for Retry-After, at least 1.
    private static func seconds(_ duration: Duration) -> Int {
        max(1, Int(duration.components.seconds) + (duration.components.attoseconds > 0 ? 1 : 0))
    }
}

/// A bounded table of failure buckets: each holds up to `burst` failures' credit and gets one
/// back every `refill`.
struct FailureTable<Key: Hashable & Sendable>: Sendable {
    private struct Bucket: Sendable {
        var credit: Double
        var updated: ContinuousClock.Instant
        var lastFailure: ContinuousClock.Instant
    }

    let burst: Double
    let refill: Duration
    /// How long an entry is kept after its last failure even once its credit is full.
    let keep: Duration
    let capacity: Int
    private var buckets: [Key: Bucket] = [:]

    init(burst: Double, refill: Duration, keep: Duration, capacity: Int) {
        self.burst = max(1, burst)
        self.refill = refill
        self.keep = keep
        self.capacity = max(1, capacity)
    }

    var count: Int { buckets.count }

    /// How long until `key` has credit for one more failure; nil: it has some now.
    mutating func wait(_ key: Key, now: ContinuousClock.Instant) -> Duration? {
        guard var bucket = buckets[key] else { return nil }
        refresh(&bucket, now: now)
        buckets[key] = bucket
        return bucket.credit >= 1 ? nil : refill * (1 - bucket.credit)
    }

    /// Whether `key` failed within `window` of `now`.
    func failedLately(_ key: Key, within window: Duration, now: ContinuousClock.Instant) -> Bool {
        buckets[key].map { now - $0.lastFailure < window } ?? false
    }

    /// Takes one failure's credit from `key` (never below zero: hammering a closed door does
    /// not keep it closed for longer than one refill).
    mutating func fail(_ key: Key, now: ContinuousClock.Instant) {
        var bucket: Bucket
        if let known = buckets[key] {
            bucket = known
            refresh(&bucket, now: now)
        } else {
            makeRoom(now: now)
            bucket = Bucket(credit: burst, updated: now, lastFailure: now)
        }
        bucket.credit = max(0, bucket.credit - 1)
        bucket.lastFailure = now
        buckets[key] = bucket
    }

    mutating func forget(_ key: Key) { buckets[key] = nil }

    private func refresh(_ bucket: inout Bucket, now: ContinuousClock.Instant) {
        let refilled = (now - bucket.updated) / refill
        bucket.credit = min(burst, bucket.credit + refilled)
        bucket.updated = now
    }

    /// Before a new entry in a full table: drop the entries that no longer matter (full credit,
    /// kept long enough), and if that is not enough, the quarter that failed longest ago.
    private mutating func makeRoom(now: ContinuousClock.Instant) {
        guard buckets.count >= capacity else { return }
        let full = refill * burst
        buckets = buckets.filter { now - $0.value.updated < full || now - $0.value.lastFailure < keep }
        guard buckets.count >= capacity else { return }
        let oldest = buckets.sorted { $0.value.lastFailure < $1.value.lastFailure }.prefix(max(1, capacity / 4))
        for (key, _) in oldest { buckets[key] = nil }
    }
}

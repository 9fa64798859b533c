import Synchronization

/// The cluster secrets a process holds: the one it sends, and every one it accepts.
///
/// Normally the secret file holds one secret. During a rotation it holds two, one per line: the
/// first is the one sent, and every line is accepted, so roles that have moved to the new secret
/// and roles that have not yet still talk to each other (docs/security.md, "Rotating secrets").
/// ``reload()`` re-reads the file (each role calls it on SIGHUP); a file that cannot be used
/// leaves the secrets held as they were.
public final class ClusterSecretRing: Sendable, CustomStringConvertible {
    /// The most secrets a file may hold: a rotation needs two; more is a file gone wrong.
    public static let maximumSecrets = 4

    /// The file the secrets come from; nil for a ring of one fixed secret.
    public let path: String?
    /// Never empty; the first is the one sent.
    private let secrets: Mutex<[ClusterSecret]>

    /// A ring of one secret that never changes (tests, and tools that do not reload).
    public init(_ secret: ClusterSecret) {
        path = nil
        secrets = Mutex([secret])
    }

    /// The secrets in the file at `path`.
    public init(path: String) throws(ClusterSecret.LoadError) {
        self.path = path
        secrets = Mutex(try ClusterSecret.loadAll(path: path))
    }

    /// The secret this process sends.
    public var current: ClusterSecret { secrets.withLock { $0[0] } }

    /// Every secret this process accepts, the one it sends first.
    public var accepted: [ClusterSecret] { secrets.withLock { $0 } }

    /// Whether `header` (an `Authorization` value) carries one of the accepted secrets. Every
    /// secret is compared, each in constant time, so the time does not say which one matched.
    public func isCarried(by header: String?) -> Bool {
        accepted.reduce(false) { found, secret in secret.isCarried(by: header) || found }
    }

    /// Re-reads the file; returns how many secrets are now accepted. Throws, keeping the secrets
    /// held, when the file cannot be read, holds a secret that cannot be used, or `validate` says
    /// why the new first secret would lock the process out.
    @discardableResult
    public func reload(validate: (ClusterSecret) -> String? = { _ in nil }) throws(ClusterSecret.LoadError) -> Int {
        guard let path else { return accepted.count }
        let loaded = try ClusterSecret.loadAll(path: path)
        if let reason = validate(loaded[0]) { throw .refused(path: path, reason: reason) }
        secrets.withLock { $0 = loaded }
        return loaded.count
    }

    public var description: String { "ClusterSecretRing(\(accepted.count) secrets, redacted)" }
}

import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The shared secret every internal API (chunkserver, chunkmaster, metaserver) asks for, sent as
/// `Authorization: Bearer <secret>`. It never appears in a log line or an error message:
/// `description` is redacted.
public struct ClusterSecret: Sendable, Equatable, CustomStringConvertible {
    /// The secret itself.
    public let value: String

    /// Why a secret file could not be used.
    public enum LoadError: Error, Sendable, CustomStringConvertible {
        /// The file could not be read.
        case unreadable(path: String, reason: String)
        /// The file holds fewer than ``minimumLength`` characters, or characters a header cannot carry.
        case weak(path: String)
        /// The file holds no secret, or more than ``ClusterSecretRing/maximumSecrets``.
        case count(path: String, found: Int)
        /// The secrets are good, but the process would be locked out sending the first (with a
        /// role table that does not list it); `reason` says why.
        case refused(path: String, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read the cluster secret file \(path): \(reason)"
            case .weak(let path):
                "the cluster secret in \(path) must be at least \(ClusterSecret.minimumLength) printable characters without spaces"
            case .count(let path, let found):
                "the cluster secret file \(path) holds \(found) secrets: it takes one per line, one to \(ClusterSecretRing.maximumSecrets) (two while rotating)"
            case .refused(let path, let reason): "the cluster secret file \(path) cannot be used: \(reason)"
            }
        }
    }

    /// Shorter secrets are refused: a guessable secret protects nothing.
    public static let minimumLength = 16

    /// Wraps a secret; nil when it is too short or not a valid header token.
    public init?(_ value: String) {
        guard value.count >= Self.minimumLength, value.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        self.value = value
    }

    /// Reads a secret file: the secret it sends, its first line (see ``loadAll(path:)``).
    public static func load(path: String) throws(LoadError) -> ClusterSecret {
        try loadAll(path: path)[0]
    }

    /// Reads a file that must hold exactly one secret (the peer secret, which does not rotate by
    /// file): a second line is ``LoadError/count(path:found:)``, not silently ignored.
    public static func loadOne(path: String) throws(LoadError) -> ClusterSecret {
        let secrets = try loadAll(path: path)
        guard secrets.count == 1 else { throw .count(path: path, found: secrets.count) }
        return secrets[0]
    }

    /// Reads a secret file: one secret per line, blank lines and surrounding white space ignored;
    /// two during a rotation (the first is sent, both are accepted: ``ClusterSecretRing``).
    public static func loadAll(path: String) throws(LoadError) -> [ClusterSecret] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: "\(error.localizedDescription)")
        }
        let lines = SecretFile.lines(of: String(decoding: data, as: UTF8.self))
        guard (1...ClusterSecretRing.maximumSecrets).contains(lines.count) else { throw .count(path: path, found: lines.count) }
        var secrets: [ClusterSecret] = []
        for line in lines {
            guard let secret = ClusterSecret(line) else { throw .weak(path: path) }
            secrets.append(secret)
        }
        return secrets
    }

    /// 32 random bytes as hex, from the system's cryptographic generator.
    public static func generate() -> ClusterSecret {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return ClusterSecret(bytes.map { String($0, radix: 16).leftPadded(to: 2) }.joined())!
    }

    /// Reads the secret at `path`, or makes one and writes it there with mode 0600 when the file
    /// does not exist yet (what `speedy up` does on first start).
    public static func loadOrCreate(path: String) throws -> ClusterSecret {
        if FileManager.default.fileExists(atPath: path) { return try load(path: path) }
        let secret = generate()
        try SecretFile.write(secret.value + "\n", to: path)
        return secret
    }

    /// `Bearer <secret>`, the `Authorization` header value.
    public var authorization: String { "Bearer " + value }

    /// Whether `header` (an `Authorization` value) carries this secret; compared in constant time.
    public func isCarried(by header: String?) -> Bool {
        guard let header, header.hasPrefix("Bearer ") else { return false }
        return ConstantTime.equal(Array(header.utf8.dropFirst(7)), Array(value.utf8))
    }

    public var description: String { "ClusterSecret(redacted)" }
}

/// Writes files that hold secrets: created with mode 0600 before any byte is written, renamed
/// into place so a reader never sees half a secret.
public enum SecretFile {
    /// The secrets or keys a file's text holds, one per line: white space around each, and blank
    /// lines, ignored (the cluster secret, role secrets and token keys are all written so).
    public static func lines(of text: String) -> [String] {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Writes `text` to `path` readable by the owner only (or with `mode`, for a file that holds
    /// no secret but is written the same careful way).
    public static func write(_ text: String, to path: String, mode: mode_t = 0o600) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = path + ".tmp-\(getpid())"
        // A fresh file only: whatever sits at the temporary path (a file with other permissions,
        // a symlink elsewhere) is removed, and the open refuses to follow or reuse one.
        unlink(temporary)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: temporary]) }
        // Exactly `mode`, whatever the umask took away (before any byte is written).
        fchmod(fd, mode)
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd)
        close(fd)
        guard written == bytes.count, synced == 0, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}

/// Comparison whose time does not depend on where two byte strings differ.
public enum ConstantTime {
    /// Whether `a` and `b` are equal; their lengths are not secret.
    public static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for i in a.indices { difference |= a[i] ^ b[i] }
        return difference == 0
    }
}

extension String {
    func leftPadded(to width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}

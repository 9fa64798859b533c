import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Who changed or tried what: one JSON line per push, delete, failed login and refused request,
/// to a file (`--audit-log PATH`) or standard error (`-`), apart from the request log, which
/// rotates with the process's output and says nothing of refused intents in a form a tool reads.
///
/// A line is written with one `write(2)` on a descriptor opened with `O_APPEND`, so lines from
/// several threads never interleave and a log rotated away (SIGHUP reopens the path) loses none.
public final class AuditLog: Sendable {
    /// One line of the log. Field names are a contract (docs/security.md).
    public struct Entry: Codable, Sendable, Equatable {
        /// When, in UTC, to the millisecond (`2026-12-06T05:30:00.123Z`).
        public var time: String
        /// What: `push`, `delete`, `login_failed` or `denied`.
        public var event: String
        /// The user the credentials named, as far as they did (a failed login's claimed user);
        /// nil for anonymous requests.
        public var user: String?
        /// The client's address (the one a trusted proxy named, behind one).
        public var client: String
        /// The trusted proxy the request came through, if any.
        public var proxy: String?
        public var method: String
        /// The request's path, at most 512 characters.
        public var path: String
        /// The repository, where the path names one.
        public var repository: String?
        /// The tag or digest the request named, where it did.
        public var reference: String?
        /// The manifest's digest a push stored (its answer's `Docker-Content-Digest`).
        public var digest: String?
        /// The HTTP status answered.
        public var status: Int
        /// `success` (2xx) or `failure`.
        public var outcome: String

        /// An entry stamped now.
        public init(
            event: String, user: String?, client: String, proxy: String?, method: String, path: String, repository: String?,
            reference: String?, digest: String?, status: Int
        ) {
            self.time = Self.timestamp(Date())
            self.event = event
            self.user = user
            self.client = client
            self.proxy = proxy
            self.method = method
            self.path = String(path.prefix(512))
            self.repository = repository
            self.reference = reference
            self.digest = digest
            self.status = status
            self.outcome = (200..<300).contains(status) ? "success" : "failure"
        }

        static func timestamp(_ date: Date) -> String {
            Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(date)
        }
    }

    /// Why the log could not be opened.
    public struct OpenError: Error, CustomStringConvertible {
        public let description: String
    }

    private let path: String?
    private let descriptor: Mutex<Int32>

    /// Appends to `path` (made with mode 0600 when missing), or to standard error when `path`
    /// is `-`.
    public init(path: String) throws(OpenError) {
        if path == "-" {
            self.path = nil
            descriptor = Mutex(STDERR_FILENO)
        } else {
            self.path = path
            descriptor = Mutex(try Self.open(path))
        }
    }

    deinit {
        let fd = descriptor.withLock { $0 }
        if path != nil, fd >= 0 { close(fd) }
    }

    /// Writes `entry` as one line; a failed write is counted on standard error, never thrown at
    /// the request it describes.
    public func record(_ entry: Entry) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(entry) else { return }
        line.append(UInt8(ascii: "\n"))
        let written = descriptor.withLock { fd in
            line.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        }
        if written != line.count { FileHandle.standardError.write(Data("speedy: cannot write the audit log (errno \(errno))\n".utf8)) }
    }

    /// Opens the path again (after a rotation moved the file away); keeps the old descriptor
    /// when the path cannot be opened, and says why.
    public func reopen() throws(OpenError) {
        guard let path else { return }
        let fresh = try Self.open(path)
        let old = descriptor.withLock { fd in
            defer { fd = fresh }
            return fd
        }
        close(old)
    }

    private static func open(_ path: String) throws(OpenError) -> Int32 {
        let fd = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OpenError(description: "cannot open the audit log \(path): \(String(cString: strerror(errno)))") }
        return fd
    }
}

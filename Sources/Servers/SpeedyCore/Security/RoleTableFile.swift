import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The role table a process checks its callers against, as last read from its file
/// (`--role-table`); ``reload()`` re-reads it (each role calls it on SIGHUP), and a file that
/// cannot be used, or whose table would lock the process out (`check`), leaves the table held as
/// it was.
public final class RoleTableFile: Sendable, CustomStringConvertible {
    /// Why a table file cannot be used.
    public enum LoadError: Error, Sendable, CustomStringConvertible {
        /// The file cannot be read, or is too large to be a table.
        case unreadable(path: String, reason: String)
        /// The file is not a table.
        case invalid(path: String, RoleTable.ParseError)
        /// The table is one, but not one this process can run with (`check` said why).
        case refused(path: String, reason: String)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "cannot read the role table \(path): \(reason)"
            case .invalid(let path, let error): "the role table \(path) cannot be used: \(error)"
            case .refused(let path, let reason): "the role table \(path) cannot be used: \(reason)"
            }
        }
    }

    /// The largest file read: every entry at its longest.
    static let maximumFileBytes = RoleTable.maximumEntries * (RoleTable.maximumLineBytes + 1) + 64 * 1024

    /// The file the table comes from; nil for a fixed table.
    public let path: String?
    private let held: Mutex<RoleTable>
    /// Why a table would not let this process, sending a secret, run (its own credential
    /// missing, say); nil when it would.
    public typealias Check = @Sendable (RoleTable, ClusterSecret) -> String?
    private let check: Check
    /// The secret this process sends now (nil: nothing to check).
    private let sending: @Sendable () -> ClusterSecret?

    /// A table that never changes (tests).
    public init(_ table: RoleTable) {
        path = nil
        held = Mutex(table)
        check = { _, _ in nil }
        sending = { nil }
    }

    /// The table in the file at `path`, checked now and at every re-read with `check` against
    /// the secret `sending` gives.
    public init(
        path: String, sending: @escaping @Sendable () -> ClusterSecret? = { nil }, check: @escaping Check = { _, _ in nil }
    ) throws(LoadError) {
        self.path = path
        self.check = check
        self.sending = sending
        held = Mutex(try Self.load(path: path) { table in sending().flatMap { check(table, $0) } })
    }

    /// Why the table held would not let this process run if it sent `secret` (a secret file
    /// re-read checks its new first line so); nil when it would.
    public func refusal(sending secret: ClusterSecret) -> String? { check(table, secret) }

    /// The table now.
    public var table: RoleTable { held.withLock { $0 } }

    /// The role whose credential for ports of kind `audience` `header` carries, if any.
    public func role(carriedBy header: String?, at audience: ClusterRole) -> ClusterRole? {
        table.role(carriedBy: header, at: audience)
    }

    /// Re-reads the file; returns how many entries the table now has. Throws, keeping the table
    /// held, when the file cannot be read, parsed or used.
    @discardableResult
    public func reload() throws(LoadError) -> Int {
        guard let path else { return table.entries.count }
        let (check, sending) = (check, sending)
        let loaded = try Self.load(path: path) { table in sending().flatMap { check(table, $0) } }
        held.withLock { $0 = loaded }
        return loaded.entries.count
    }

    /// Reads, parses and checks the table file at `path`.
    static func load(path: String, validate: (RoleTable) -> String?) throws(LoadError) -> RoleTable {
        let bytes = try read(path)
        let table: RoleTable
        do {
            table = try RoleTable.parse(String(decoding: bytes, as: UTF8.self))
        } catch {
            throw .invalid(path: path, error)
        }
        if let reason = validate(table) { throw .refused(path: path, reason: reason) }
        return table
    }

    /// The file's bytes: opened once, checked to be a regular file (a FIFO or a device is no
    /// table, and is not read), and refused when longer than ``maximumFileBytes``.
    private static func read(_ path: String) throws(LoadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        var bytes = [UInt8](repeating: 0, count: maximumFileBytes + 1)
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw .unreadable(path: path, reason: String(cString: strerror(errno))) }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumFileBytes else { throw .unreadable(path: path, reason: "longer than \(maximumFileBytes) bytes") }
        return Array(bytes.prefix(count))
    }

    /// The file and how many entries its table has.
    public var description: String { "RoleTableFile(\(path ?? "fixed"), \(table.entries.count) entries)" }
}

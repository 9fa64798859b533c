import Foundation
import Synchronization

/// The role table a process checks its callers against, as last read from its file
/// (`--role-table`); ``reload()`` re-reads it (each role calls it on SIGHUP), and a file that
/// cannot be used, or that `validate` refuses, leaves the table held as it was.
public final class RoleTableFile: Sendable, CustomStringConvertible {
    /// Why a table file cannot be used.
    public enum LoadError: Error, Sendable, CustomStringConvertible {
        /// The file cannot be read, or is too large to be a table.
        case unreadable(path: String, reason: String)
        /// The file is not a table.
        case invalid(path: String, RoleTable.ParseError)
        /// The table is one, but not one this process can run with (`validate` said why).
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
    private let validate: @Sendable (RoleTable) -> String?

    /// A table that never changes (tests).
    public init(_ table: RoleTable) {
        path = nil
        held = Mutex(table)
        validate = { _ in nil }
    }

    /// The table in the file at `path`; `validate` returns why a table cannot be used by this
    /// process (its own credential missing, say), or nil. It is asked again at every re-read.
    public init(path: String, validate: @escaping @Sendable (RoleTable) -> String? = { _ in nil }) throws(LoadError) {
        self.path = path
        self.validate = validate
        held = Mutex(try Self.load(path: path, validate: validate))
    }

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
        let loaded = try Self.load(path: path, validate: validate)
        held.withLock { $0 = loaded }
        return loaded.entries.count
    }

    /// Reads, parses and checks the table file at `path`.
    static func load(path: String, validate: (RoleTable) -> String?) throws(LoadError) -> RoleTable {
        // The size first: a FIFO or a device is no table, and is not read at all.
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard status.st_mode & S_IFMT == S_IFREG, Int(status.st_size) <= maximumFileBytes else {
            throw .unreadable(path: path, reason: "not a regular file of at most \(maximumFileBytes) bytes")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw .unreadable(path: path, reason: error.localizedDescription)
        }
        let table: RoleTable
        do {
            table = try RoleTable.parse(String(decoding: data.prefix(maximumFileBytes), as: UTF8.self))
        } catch {
            throw .invalid(path: path, error)
        }
        if let reason = validate(table) { throw .refused(path: path, reason: reason) }
        return table
    }

    public var description: String { "RoleTableFile(\(path ?? "fixed"), \(table.entries.count) entries)" }
}

import Synchronization

/// The role table a process checks its callers against, as last read from its file
/// (`--role-table`); ``reload()`` re-reads it (each role calls it on SIGHUP), and a file that
/// cannot be used leaves the table held as it was.
public final class RoleTableFile: Sendable, CustomStringConvertible {
    /// The file the table comes from; nil for a fixed table.
    public let path: String?
    private let held: Mutex<RoleTable>

    /// A table that never changes (tests).
    public init(_ table: RoleTable) {
        path = nil
        held = Mutex(table)
    }

    /// The table in the file at `path`.
    public init(path: String) throws(RoleTable.LoadError) {
        self.path = path
        held = Mutex(try RoleTable.load(path: path))
    }

    /// The table now.
    public var table: RoleTable { held.withLock { $0 } }

    /// The role whose secret `header` (an `Authorization` value) carries, if any.
    public func role(carriedBy header: String?) -> ClusterRole? { table.role(carriedBy: header) }

    /// Re-reads the file; returns how many entries the table now has. Throws, keeping the table
    /// held, when the file cannot be read or parsed.
    @discardableResult
    public func reload() throws(RoleTable.LoadError) -> Int {
        guard let path else { return table.entries.count }
        let loaded = try RoleTable.load(path: path)
        held.withLock { $0 = loaded }
        return loaded.entries.count
    }

    public var description: String { "RoleTableFile(\(path ?? "fixed"), \(table.entries.count) entries)" }
}

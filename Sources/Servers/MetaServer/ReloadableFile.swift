import Foundation
import Logging
import SpeedyCore
import Synchronization

/// A file of rules the metaserver reads at start, where a file that does not parse stops the
/// start, and again on SIGHUP, where it leaves the rules as they were (and logs why).
public final class ReloadableFile<Value: Sendable>: Sendable {
    /// Where the file is.
    public let path: String
    /// What the file holds, for messages: "retention rules".
    public let what: String
    private let parse: @Sendable (String) throws -> Value
    private let value: Mutex<Value>

    /// Reads the file at `path` with `parse`, whose error says what is wrong (and where).
    /// - Throws: ``ReloadableFileError`` naming the file.
    public init(path: String, what: String, parse: @escaping @Sendable (String) throws -> Value) throws(ReloadableFileError) {
        self.path = path
        self.what = what
        self.parse = parse
        self.value = Mutex(try Self.load(path, what: what, parse: parse))
    }

    /// The rules now.
    public var current: Value { value.withLock { $0 } }

    /// Reads the file again; on failure the rules stay as they were, and the error is logged.
    public func reload(logger: Logger) {
        do {
            let loaded = try Self.load(path, what: what, parse: parse)
            value.withLock { $0 = loaded }
            logger.notice("\(what) re-read from \(path)")
        } catch {
            logger.error("\(error); the \(what) read before stay")
        }
    }

    private static func load(_ path: String, what: String, parse: (String) throws -> Value) throws(ReloadableFileError) -> Value {
        // A regular file of at most 1 MiB, far more than any set of rules: a FIFO would block the
        // SIGHUP handler, and a path to something large is refused, not read whole.
        guard (try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType) == .typeRegular,
            let handle = FileHandle(forReadingAtPath: path)
        else { throw .unreadable(path, what) }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: (1 << 20) + 1) ?? Data() else { throw .unreadable(path, what) }
        guard data.count <= 1 << 20 else { throw .invalid(path, "it is over 1 MiB") }
        guard let text = String(data: data, encoding: .utf8) else { throw .invalid(path, "it is not UTF-8 text") }
        do {
            return try parse(text)
        } catch {
            throw .invalid(path, "\(error)")
        }
    }
}

/// Why a file of rules could not be used.
public enum ReloadableFileError: Error, Sendable, CustomStringConvertible {
    /// The file (path, what it holds) is missing or cannot be read.
    case unreadable(String, String)
    /// The file (path) does not parse: why.
    case invalid(String, String)

    public var description: String {
        switch self {
        case .unreadable(let path, let what): "cannot read the \(what) file \(path)"
        case .invalid(let path, let reason): "\(path): \(reason)"
        }
    }
}

/// The retention file (docs/gc.md, "Retention").
public typealias RetentionRules = ReloadableFile<RetentionPolicy>

extension ReloadableFile where Value == RetentionPolicy {
    /// Reads the retention file at `path`.
    public convenience init(retentionFile path: String) throws(ReloadableFileError) {
        try self.init(path: path, what: "retention rules") { text in try RetentionPolicy(parsing: text) }
    }
}

/// The sync file (docs/registry.md, "Replication"): the jobs ``ScheduledSync`` runs.
public typealias SyncJobs = ReloadableFile<[SyncJob]>

extension ReloadableFile where Value == [SyncJob] {
    /// Reads the sync file at `path`.
    public convenience init(syncFile path: String) throws(ReloadableFileError) {
        try self.init(path: path, what: "sync jobs") { text in try SyncJobFile.parse(text) }
    }
}

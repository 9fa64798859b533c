import Foundation
import Logging
import SpeedyCore
import Synchronization

/// The retention file (docs/gc.md, "Retention") as the metaserver last read it: at start, where a
/// file that does not parse stops the start, and on SIGHUP, where it leaves the rules as they were.
public final class RetentionRules: Sendable {
    /// Where the file is.
    public let path: String
    private let policy: Mutex<RetentionPolicy>

    /// Reads the file at `path`.
    /// - Throws: ``RetentionRulesError`` naming the file and, for a bad line, its number.
    public init(path: String) throws(RetentionRulesError) {
        self.path = path
        self.policy = Mutex(try Self.load(path))
    }

    /// The rules now.
    public var current: RetentionPolicy { policy.withLock { $0 } }

    /// Reads the file again; on failure the rules stay as they were, and the error is logged.
    public func reload(logger: Logger) {
        do {
            let loaded = try Self.load(path)
            policy.withLock { $0 = loaded }
            logger.notice("retention rules re-read from \(path): \(loaded.rules.count) rules")
        } catch {
            logger.error("\(error); the retention rules read before stay")
        }
    }

    private static func load(_ path: String) throws(RetentionRulesError) -> RetentionPolicy {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        guard let text = String(data: data, encoding: .utf8) else { throw .invalid(path, "it is not UTF-8 text") }
        do {
            return try RetentionPolicy(parsing: text)
        } catch {
            throw .invalid(path, error.description)
        }
    }
}

/// Why the retention file could not be used.
public enum RetentionRulesError: Error, Sendable, CustomStringConvertible {
    case unreadable(String)
    case invalid(String, String)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read the retention file \(path)"
        case .invalid(let path, let reason): "\(path): \(reason)"
        }
    }
}

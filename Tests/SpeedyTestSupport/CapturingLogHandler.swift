import Logging
import Synchronization

/// Log lines written through ``CapturingLogHandler``.
public final class CapturedLog: Sendable {
    private let stored = Mutex([String]())

    /// An empty log.
    public init() {}

    /// Every line so far: `LEVEL MESSAGE METADATA`.
    public var lines: [String] { stored.withLock { $0 } }

    /// Adds a line.
    public func append(_ line: String) { stored.withLock { $0.append(line) } }
}

/// Keeps every message with its metadata, for tests that check what a log says (and does not).
public struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .trace

    /// A handler writing to `log`.
    public init(log: CapturedLog) {
        self.log = log
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        log.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 })")
    }
}

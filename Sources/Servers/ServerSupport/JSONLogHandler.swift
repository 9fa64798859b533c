import Logging
import SpeedyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A log handler writing one JSON object per line to standard error, for log shippers:
/// `{"time":…,"level":…,"label":…,"message":…}` plus the metadata as string fields.
/// Chosen with `SPEEDY_LOG_FORMAT=json`.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    /// A handler for loggers labelled `label`.
    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields: [(String, String)] = [
            ("time", Self.timestamp()), ("level", event.level.rawValue), ("label", label), ("message", event.message.description),
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for key in merged.keys.sorted() { fields.append((key, merged[key]!.description)) }
        var line = "{" + fields.map { "\(Self.quote($0.0)):\(Self.quote($0.1))" }.joined(separator: ",") + "}\n"
        line.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }

    /// `text` as a JSON string literal.
    public static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// UTC time with milliseconds, RFC 3339.
    static func timestamp() -> String {
        let milliseconds = currentTimeMillis()
        var parts = tm()
        var seconds = time_t(milliseconds / 1000)
        gmtime_r(&seconds, &parts)
        func pad(_ n: Int, _ width: Int) -> String {
            let s = String(n)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))T"
            + "\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2)).\(pad(Int(milliseconds % 1000), 3))Z"
    }
}

/// Chooses the process's log format once, from `SPEEDY_LOG_FORMAT` (`text`, the default, or `json`).
enum LogFormat {
    private static let chosen = Mutex(false)

    static func bootstrapOnce() {
        chosen.withLock { done in
            guard !done else { return }
            done = true
            let format = getenv("SPEEDY_LOG_FORMAT").map { String(cString: $0).lowercased() }
            if format == "json" { LoggingSystem.bootstrap { JSONLogHandler(label: $0) } }
        }
    }
}

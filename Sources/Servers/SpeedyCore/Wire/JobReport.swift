/// Progress of a long operator job (`chunktool verify`, `chunktool repair`, `transfer`), sent to
/// the master about once a second (`POST /v1/jobs`) so the console can show it.
public struct JobReport: Sendable, Codable, Equatable {
    /// The kinds of job that report.
    public static let kinds: Set<String> = ["verify", "repair", "transfer", "fsck", "gc", "retention", "sync", "drain", "rebalance"]
    /// Longest id, target or message kept.
    public static let maxText = 200

    /// Where a job is.
    public enum State: String, Sendable, Codable, Equatable {
        case running, finished, failed
        /// No report for 30 s while running: the tool was killed or lost the master.
        case lost
    }

    /// Unique per run (a random id the tool makes).
    public var id: String
    /// One of ``kinds``.
    public var kind: String
    /// What it works on, for people: `group 1`, `g1-cs4 from g1-cs1`.
    public var target: String
    public var state: State
    /// Items done and in all (chunks).
    public var done: Int
    public var total: Int
    /// Bytes moved or read so far, and in all when known.
    public var bytes: UInt64
    public var totalBytes: UInt64?
    /// How it ended, for people, once finished or failed.
    public var message: String?

    /// The report with its texts made printable (see ``PrintableText``).
    public var cleaned: JobReport {
        var report = self
        report.id = PrintableText.clean(id, limit: Self.maxText)
        report.target = PrintableText.clean(target, limit: Self.maxText)
        report.message = message.map { PrintableText.clean($0, limit: Self.maxText) }
        return report
    }

    /// Creates a report.
    public init(
        id: String, kind: String, target: String, state: State, done: Int, total: Int, bytes: UInt64, totalBytes: UInt64? = nil,
        message: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.target = target
        self.state = state
        self.done = done
        self.total = total
        self.bytes = bytes
        self.totalBytes = totalBytes
        self.message = message
    }
}

/// A job as the master shows it: the last report, who runs it, and its rate and time left.
public struct JobSnapshot: Sendable, Codable, Equatable {
    /// The last report.
    public var report: JobReport
    /// Who started it (`user@host (tool)`), when the tool said.
    public var actor: String?
    /// Milliseconds since its first and its last report.
    public var startedAgoMs: Int64
    public var updatedAgoMs: Int64
    /// Share done, 0 to 1 (by bytes when the total is known, else by items).
    public var fraction: Double
    /// Bytes and items per second since it started.
    public var bytesPerSec: Double
    public var itemsPerSec: Double
    /// Seconds left at the rate so far; nil when not running or not yet known.
    public var etaSeconds: Int64?

    /// Creates a snapshot.
    public init(
        report: JobReport, actor: String?, startedAgoMs: Int64, updatedAgoMs: Int64, fraction: Double, bytesPerSec: Double,
        itemsPerSec: Double, etaSeconds: Int64?
    ) {
        self.report = report
        self.actor = actor
        self.startedAgoMs = startedAgoMs
        self.updatedAgoMs = updatedAgoMs
        self.fraction = fraction
        self.bytesPerSec = bytesPerSec
        self.itemsPerSec = itemsPerSec
        self.etaSeconds = etaSeconds
    }
}

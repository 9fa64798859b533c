import SpeedyCore

/// The operator jobs the master has heard of, from their progress reports: plain values and pure
/// functions of time. Not saved (a job's start and end are in the event log).
public struct JobBoard: Sendable {
    /// A running job silent this long is shown as lost.
    public static let lostAfterMs: Int64 = 30_000
    /// Ended jobs stay on the board this long.
    public static let keepEndedMs: Int64 = 600_000
    /// Jobs kept at most (the oldest ended ones go first).
    public static let capacity = 50

    struct Entry: Sendable {
        var report: JobReport
        var actor: String?
        var firstMs: Int64
        var lastMs: Int64
    }

    /// What the event log should say.
    public enum Change: Sendable, Equatable {
        case started(kind: String, target: String, actor: String?)
        case ended(kind: String, target: String, state: JobReport.State, message: String?, actor: String?)

        /// The event-log entry.
        public var event: (kind: String, message: String) {
            switch self {
            case .started(let kind, let target, let actor):
                ("job-started", "\(kind) of \(target) started" + (actor.map { " by \($0)" } ?? ""))
            case .ended(let kind, let target, let state, let message, let actor):
                ("job-" + state.rawValue, "\(kind) of \(target) \(state.rawValue)" + (message.map { ": \($0)" } ?? "") + (actor.map { " (\($0))" } ?? ""))
            }
        }
    }

    private var entries: [String: Entry] = [:]

    /// An empty board.
    public init() {}

    /// Takes a report that arrived at `nowMs` from `actor`.
    public mutating func apply(_ report: JobReport, actor: String?, nowMs: Int64) -> [Change] {
        var changes: [Change] = []
        var entry = entries[report.id] ?? Entry(report: report, actor: actor, firstMs: nowMs, lastMs: nowMs)
        if entries[report.id] == nil { changes.append(.started(kind: report.kind, target: report.target, actor: actor)) }
        let wasRunning = entry.report.state == .running || entries[report.id] == nil
        // An ended job stays ended: a late running report must not revive it.
        guard wasRunning else { return [] }
        entry.report = report
        entry.lastMs = nowMs
        entry.actor = entry.actor ?? actor
        entries[report.id] = entry
        if report.state != .running {
            changes.append(.ended(kind: report.kind, target: report.target, state: report.state, message: report.message, actor: entry.actor))
        }
        trim(nowMs: nowMs)
        return changes
    }

    /// Drops ended jobs past ``keepEndedMs`` and the oldest beyond ``capacity``.
    private mutating func trim(nowMs: Int64) {
        entries = entries.filter { $0.value.report.state == .running || nowMs - $0.value.lastMs <= Self.keepEndedMs }
        if entries.count > Self.capacity {
            let oldest = entries.values.sorted { $0.lastMs < $1.lastMs }.prefix(entries.count - Self.capacity)
            for entry in oldest { entries[entry.report.id] = nil }
        }
    }

    /// The jobs, newest first, with rates and time left.
    public func snapshots(nowMs: Int64) -> [JobSnapshot] {
        entries.values.sorted { ($0.firstMs, $0.report.id) > ($1.firstMs, $1.report.id) }.map { entry in
            var report = entry.report
            if report.state == .running, nowMs - entry.lastMs > Self.lostAfterMs { report.state = .lost }
            let seconds = max(0.001, Double(entry.lastMs - entry.firstMs) / 1000)
            let fraction: Double =
                if let totalBytes = report.totalBytes, totalBytes > 0 { min(1, Double(report.bytes) / Double(totalBytes)) }
                else if report.total > 0 { min(1, Double(report.done) / Double(report.total)) }
                else { report.state == .finished ? 1 : 0 }
            var eta: Int64?
            if report.state == .running, fraction > 0, fraction < 1, entry.lastMs > entry.firstMs {
                // Reports are the tools' word: a tiny fraction must not overflow the conversion.
                let left = seconds / fraction - seconds - Double(nowMs - entry.lastMs) / 1000
                if left.isFinite, left < 1e12 { eta = Int64(max(0, left)) }
            }
            return JobSnapshot(
                report: report, actor: entry.actor, startedAgoMs: nowMs - entry.firstMs, updatedAgoMs: nowMs - entry.lastMs,
                fraction: fraction, bytesPerSec: Double(report.bytes) / seconds, itemsPerSec: Double(report.done) / seconds,
                etaSeconds: eta)
        }
    }
}

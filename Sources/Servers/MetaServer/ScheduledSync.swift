import Foundation
import Logging
import RegistryClient
import Replication
import ServiceLifecycle
import SpeedyClients
import SpeedyCore

/// Runs the sync file's jobs (docs/registry.md, "Replication"), each `every` after its last run
/// ended (a run that failed, after `retryAfter` if that is sooner), one job at a time so that
/// replication never takes more than one transfer's share of the links. When each job is next
/// due is kept in a state file, so a restart neither repeats a job that just ran nor forgets one
/// that is due; a run cut short by a shutdown is not recorded, and runs again (resuming: tags
/// already copied are skipped) once the metaserver is back.
/// Each run shows in the console as a job and, when it changed or failed anything, lands in the
/// event log.
public struct ScheduledSync: Service {
    let jobs: SyncJobs
    let statePath: String
    let master: MasterClient?
    let logger: Logger
    /// How often the schedule is looked at.
    let tick: Duration
    /// How soon a run that failed is tried again, when that is sooner than its job's `every`.
    let retryAfter: Duration

    /// Runs `jobs`, keeping when each is due in `statePath` and reporting to `master`.
    public init(
        jobs: SyncJobs, statePath: String, master: MasterClient?, logger: Logger, tick: Duration = .seconds(1), retryAfter: Duration = .seconds(30)
    ) {
        self.jobs = jobs
        self.statePath = statePath
        self.master = master
        self.logger = logger
        self.tick = tick
        self.retryAfter = retryAfter
    }

    /// How a run ended.
    enum Outcome: Sendable {
        case finished, failed, interrupted
    }

    public func run() async throws {
        var state = SyncState(path: statePath, logger: logger)
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            for job in jobs.current where state.isDue(job, now: Date()) {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                // A shutdown cuts the run short: its requests are cancelled, and it is not recorded.
                let outcome = (try? await cancelWhenGracefulShutdown { await runOnce(job) }) ?? .interrupted
                switch outcome {
                case .finished: state.schedule(job.name, at: Self.fromNow(job.every))
                case .failed: state.schedule(job.name, at: Self.fromNow(min(job.every, retryAfter)))
                case .interrupted: break
                }
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
        }
    }

    private static func fromNow(_ duration: Duration) -> Date {
        Date(timeIntervalSinceNow: duration / .milliseconds(1) / 1000)
    }

    /// One run of `job`.
    func runOnce(_ job: SyncJob) async -> Outcome {
        let target = "\(job.name): \(job.source.url) -> \(job.destination.url)"
        let reporter = master.map { JobReporter(kind: "sync", target: target, client: $0) }
        let started = ContinuousClock.now
        let source: RegistryClient
        let destination: RegistryClient
        do {
            source = try job.source.makeClient()
            destination = try job.destination.makeClient()
        } catch {
            await fail(job, reporter, "\(error)")
            return .failed
        }
        defer {
            Task {
                await source.shutdown()
                await destination.shutdown()
            }
        }
        let sync = RegistrySync(source: source, destination: destination, deleteMissing: job.deleteMissing)
        var report = RegistrySync.Report()
        let plans: [RegistrySync.Plan]
        do {
            plans = try await sync.plan(job.rules, failures: &report.failures)
        } catch {
            if Task.isCancelled { return .interrupted }
            await fail(job, reporter, "reading \(job.source.url): \(error)")
            return .failed
        }
        let total = plans.reduce(0) { $0 + $1.tags.count }
        var done = 0
        for plan in plans {
            if Task.isCancelled { break }
            await sync.run(plan, into: &report) { _, bytes in
                done += 1
                reporter?.progress(done: done, total: total, bytes: bytes)
            }
        }
        if Task.isCancelled {
            await reporter?.end(.failed, message: "cut short by the metaserver's shutdown; runs again at its start")
            return .interrupted
        }
        report.durationMs = Int64((ContinuousClock.now - started) / .milliseconds(1))
        let summary = "job \(job.name): " + report.summary + " in \(report.durationMs) ms"
        await reporter?.end(report.failures.isEmpty ? .finished : .failed, message: summary)
        for failure in report.failures.prefix(20) { logger.warning("sync job \(job.name): \(failure)") }
        if report.changedAnything || !report.failures.isEmpty {
            logger.notice("\(summary)")
            try? await master?.recordEvent(EventReport(kind: "sync", message: String(summary.prefix(EventReport.maxMessage))))
        } else {
            logger.info("\(summary)")
        }
        return report.failures.isEmpty ? .finished : .failed
    }

    private func fail(_ job: SyncJob, _ reporter: JobReporter?, _ message: String) async {
        let text = "job \(job.name) could not run: \(message)"
        logger.warning("sync \(text)")
        await reporter?.end(.failed, message: text)
        try? await master?.recordEvent(EventReport(kind: "sync", message: String(("sync " + text).prefix(EventReport.maxMessage))))
    }
}

/// When each sync job is next due, in a JSON file: `{"NAME": MILLISECONDS-SINCE-1970}`.
public struct SyncState: Sendable {
    /// The state file.
    public let path: String
    let logger: Logger
    /// When each job is next due, in milliseconds since 1970.
    public private(set) var nextRun: [String: Int64]

    /// The state in `path`; none (every job due) when the file is missing or does not parse.
    public init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
        nextRun = [:]
        guard let data = FileManager.default.contents(atPath: path) else { return }
        guard let decoded = try? JSONDecoder().decode([String: Int64].self, from: data) else {
            logger.warning("the sync state \(path) does not parse: every job runs now")
            return
        }
        nextRun = decoded
    }

    /// Whether `job` is to run at `now`: it never ran, its time has come, or that time is further
    /// off than its `every` (a clock set back, or a shorter `every` since: neither holds it off).
    public func isDue(_ job: SyncJob, now: Date) -> Bool {
        guard let next = nextRun[job.name] else { return true }
        let wait = next - Self.milliseconds(now)
        return wait <= 0 || wait > Int64(job.every / .milliseconds(1))
    }

    /// Records that job `name` is next due at `date`.
    public mutating func schedule(_ name: String, at date: Date) {
        nextRun[name] = Self.milliseconds(date)
        do {
            // Temporary file and rename: a crash leaves the old state or the new. Not synced: a
            // state lost to a power cut only has a job run once more, which copies nothing twice.
            try JSONEncoder().encode(nextRun).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            logger.warning("cannot write the sync state \(path): \(error); after a restart every job runs at once")
        }
    }

    private static func milliseconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 * 1000) }
}

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
    enum Outcome: Sendable, Equatable {
        /// It ran to the end: its report line, and whether it copied or deleted anything.
        case finished(String, changed: Bool)
        /// It could not run, or something in it failed: why (without timings, so that the same
        /// failure reads the same each time).
        case failed(String)
        /// A shutdown cut it short.
        case interrupted
    }

    /// A job's failed runs in a row, for the backoff and for telling each failure once.
    struct FailureStreak {
        var runs = 0
        var lastTold: String?
    }

    public func run() async throws {
        var state = SyncState(path: statePath, logger: logger)
        var streaks: [String: FailureStreak] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let current = jobs.current
            for job in current where state.isDue(job, now: Date()) {
                if Task.isShuttingDownGracefully || Task.isCancelled { break }
                var streak = streaks[job.name] ?? FailureStreak()
                // A shutdown cuts the run short: its requests are cancelled, and it is not recorded.
                let failedBefore = streak.runs > 0
                let outcome = (try? await cancelWhenGracefulShutdown { await runOnce(job, failedBefore: failedBefore) }) ?? .interrupted
                let names = Set(current.map(\.name))
                switch outcome {
                case .finished(let line, let changed):
                    streak = FailureStreak()
                    state.schedule(job.name, at: Self.fromNow(job.every), keeping: names)
                    logger.log(level: changed ? .notice : .info, "\(line)")
                    if changed { await record(line) }
                case .failed(let reason):
                    streak.runs += 1
                    // 30 s, 1 min, 2 min, … up to the job's own `every`.
                    let delay = min(job.every, retryAfter * (1 << min(streak.runs - 1, 16)))
                    state.schedule(job.name, at: Self.fromNow(delay), keeping: names)
                    logger.warning("\(reason); tried again in \(DurationText.format(delay))")
                    // The event log hears of a failure once, not at every retry.
                    if streak.lastTold != reason {
                        streak.lastTold = reason
                        await record(reason)
                    }
                case .interrupted:
                    break
                }
                streaks[job.name] = streak
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: tick) }
        }
    }

    private static func fromNow(_ duration: Duration) -> Date {
        Date(timeIntervalSinceNow: duration / .milliseconds(1) / 1000)
    }

    private func record(_ message: String) async {
        try? await master?.recordEvent(EventReport(kind: "sync", message: String(message.prefix(EventReport.maxMessage))))
    }

    /// One run of `job`. It shows on the console's job board only when it copies something or
    /// fails (a failure once, not at each retry): a job that finds everything up to date every
    /// minute would otherwise crowd the operators' own jobs off the board.
    func runOnce(_ job: SyncJob, failedBefore: Bool) async -> Outcome {
        let target = "\(job.name): \(job.source.url) -> \(job.destination.url)"
        var reporter: JobReporter?
        func board() -> JobReporter? {
            if reporter == nil, let master { reporter = JobReporter(kind: "sync", target: target, client: master) }
            return reporter
        }
        let started = ContinuousClock.now
        let clients: (source: RegistryClient, destination: RegistryClient)
        do {
            clients = try Self.makeClients(job)
        } catch {
            return await failed("sync job \(job.name) could not run: \(error)", failedBefore ? nil : board())
        }
        defer {
            Task {
                await clients.source.shutdown()
                await clients.destination.shutdown()
            }
        }
        let sync = RegistrySync(source: clients.source, destination: clients.destination, deleteMissing: job.deleteMissing)
        var report = RegistrySync.Report()
        let plans: [RegistrySync.Plan]
        do {
            plans = try await sync.plan(job.rules, failures: &report.failures)
        } catch {
            if Task.isCancelled { return .interrupted }
            return await failed("sync job \(job.name) could not read \(job.source.url): \(error)", failedBefore ? nil : board())
        }
        let total = plans.reduce(0) { $0 + $1.tags.count }
        var done = 0
        for plan in plans {
            if Task.isCancelled { break }
            await sync.run(plan, into: &report) { _, bytes in
                done += 1
                // On the board from its first copied byte.
                (bytes > 0 ? board() : reporter)?.progress(done: done, total: total, bytes: bytes)
            }
        }
        if Task.isCancelled {
            await Self.end(reporter, .failed, "cut short by the metaserver's shutdown; runs again at its start")
            return .interrupted
        }
        report.durationMs = Int64((ContinuousClock.now - started) / .milliseconds(1))
        let line = "job \(job.name): " + report.summary
        guard report.failures.isEmpty else {
            for failure in report.failures.prefix(20) { logger.warning("sync job \(job.name): \(failure)") }
            return await failed(line, failedBefore ? reporter : board())
        }
        if report.changedAnything { await Self.end(board(), .finished, line) }
        return .finished(line + " in \(report.durationMs) ms", changed: report.changedAnything)
    }

    /// Both ends' clients; neither is left open when the second cannot be made.
    private static func makeClients(_ job: SyncJob) throws(SyncJobError) -> (source: RegistryClient, destination: RegistryClient) {
        let source = try job.source.makeClient()
        do {
            return (source, try job.destination.makeClient())
        } catch {
            Task { await source.shutdown() }
            throw error
        }
    }

    private func failed(_ reason: String, _ reporter: JobReporter?) async -> Outcome {
        await Self.end(reporter, .failed, reason)
        return .failed(reason)
    }

    /// Ends a job on the board, in a task of its own: a run cut short by a shutdown is cancelled,
    /// and its last report must still go.
    private static func end(_ reporter: JobReporter?, _ state: JobReport.State, _ message: String) async {
        guard let reporter else { return }
        await Task { await reporter.end(state, message: message) }.value
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

    /// Records that job `name` is next due at `date`; jobs not in `names` (no longer in the
    /// file) are forgotten.
    public mutating func schedule(_ name: String, at date: Date, keeping names: Set<String>? = nil) {
        nextRun[name] = Self.milliseconds(date)
        if let names { nextRun = nextRun.filter { names.contains($0.key) } }
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

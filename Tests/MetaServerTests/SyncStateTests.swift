import Foundation
import Logging
import MetaServer
import SpeedyCore
import SpeedyTestSupport
import Testing

@Suite("Sync job schedule state")
struct SyncStateTests {
    let job = SyncJob(
        name: "mirror", every: .seconds(60), deleteMissing: false, source: SyncEndpoint(url: "http://127.0.0.1:1"),
        destination: SyncEndpoint(url: "http://127.0.0.1:2"), rules: [try! SyncRule(parsing: "a -> b")])
    let logger = Logger(label: "test")

    @Test func aJobIsDueWhenNeverRunAndOnceItsTimeHasCome() throws {
        let directory = try TemporaryDirectory("sync-state")
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        var state = SyncState(path: path, logger: logger)
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(state.isDue(job, now: start))
        state.schedule("mirror", at: start.addingTimeInterval(60))
        #expect(!state.isDue(job, now: start.addingTimeInterval(59)))
        #expect(state.isDue(job, now: start.addingTimeInterval(60)))
        // A clock set back (the next run now further off than `every`) does not hold the job off.
        #expect(state.isDue(job, now: start.addingTimeInterval(-3600)))
    }

    @Test func theScheduleOutlivesARestart() throws {
        let directory = try TemporaryDirectory("sync-state")
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        let start = Date(timeIntervalSince1970: 2_000_000)
        var first = SyncState(path: path, logger: logger)
        first.schedule("mirror", at: start)
        let restarted = SyncState(path: path, logger: logger)
        #expect(restarted.nextRun == ["mirror": 2_000_000_000])
        #expect(!restarted.isDue(job, now: start.addingTimeInterval(-30)))
        #expect(restarted.isDue(job, now: start))
    }

    @Test func aStateThatDoesNotParseMakesEveryJobDue() throws {
        let directory = try TemporaryDirectory("sync-state")
        defer { directory.remove() }
        let path = directory.path + "/state.json"
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        let state = SyncState(path: path, logger: logger)
        #expect(state.nextRun.isEmpty)
        #expect(state.isDue(job, now: Date()))
    }

    /// A job whose registries do not answer is tried again after `retryAfter`, then twice that,
    /// and so on: a failure that does not clear costs less and less.
    @Test func aFailingJobIsTriedAgainLaterEachTime() async throws {
        let temporary = try TemporaryDirectory("sync")
        defer { temporary.remove() }
        let directory = temporary.path
        // Port 1 of loopback: refused at once.
        try "sync down every=1h\nfrom http://127.0.0.1:1\nto http://127.0.0.1:1\nrule team/app -> team/app\n"
            .write(toFile: directory + "/sync", atomically: true, encoding: .utf8)
        let log = CapturedLog()
        let logger = Logger(label: "sync-test") { _ in CapturingLogHandler(log: log) }
        let service = ScheduledSync(
            jobs: try SyncJobs(syncFile: directory + "/sync"), statePath: directory + "/state.json", master: nil, logger: logger,
            tick: .milliseconds(10), retryAfter: .milliseconds(100))
        let running = Task { try await service.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        // The delay each "…; tried again in DELAY" line names, in order.
        func retries() -> [String] {
            log.lines.compactMap { $0.components(separatedBy: "tried again in ").dropFirst().first?.split(separator: " ").first.map(String.init) }
        }
        while retries().count < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        running.cancel()
        _ = try? await running.value
        #expect(Array(retries().prefix(3)) == ["100ms", "200ms", "400ms"], "\(log.lines)")
        #expect(log.lines.contains { $0.contains("sync job down: team/app: cannot list its tags") }, "\(log.lines)")
    }
}

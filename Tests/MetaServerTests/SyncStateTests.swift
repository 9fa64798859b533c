import Foundation
import Logging
import MetaServer
import SpeedyCore
import Synchronization
import Testing

@Suite("Sync job schedule state")
struct SyncStateTests {
    let job = SyncJob(
        name: "mirror", every: .seconds(60), deleteMissing: false, source: SyncEndpoint(url: "http://127.0.0.1:1"),
        destination: SyncEndpoint(url: "http://127.0.0.1:2"), rules: [try! SyncRule(parsing: "a -> b")])
    let logger = Logger(label: "test")

    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sync-state-\(UUID().uuidString).json").path
    }

    @Test func aJobIsDueWhenNeverRunAndOnceItsTimeHasCome() {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        var state = SyncState(path: path, logger: logger)
        let start = Date(timeIntervalSince1970: 1_000_000)
        #expect(state.isDue(job, now: start))
        state.schedule("mirror", at: start.addingTimeInterval(60))
        #expect(!state.isDue(job, now: start.addingTimeInterval(59)))
        #expect(state.isDue(job, now: start.addingTimeInterval(60)))
        // A clock set back (the next run now further off than `every`) does not hold the job off.
        #expect(state.isDue(job, now: start.addingTimeInterval(-3600)))
    }

    @Test func theScheduleOutlivesARestart() {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let start = Date(timeIntervalSince1970: 2_000_000)
        var first = SyncState(path: path, logger: logger)
        first.schedule("mirror", at: start)
        let restarted = SyncState(path: path, logger: logger)
        #expect(restarted.nextRun == ["mirror": 2_000_000_000])
        #expect(!restarted.isDue(job, now: start.addingTimeInterval(-30)))
        #expect(restarted.isDue(job, now: start))
    }

    @Test func aStateThatDoesNotParseMakesEveryJobDue() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "{not json".write(toFile: path, atomically: true, encoding: .utf8)
        let state = SyncState(path: path, logger: logger)
        #expect(state.nextRun.isEmpty)
        #expect(state.isDue(job, now: Date()))
    }

    /// A job whose registries do not answer is tried again after `retryAfter`, then twice that,
    /// and so on: a failure that does not clear costs less and less.
    @Test func aFailingJobIsTriedAgainLaterEachTime() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sync-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Port 1 of loopback: refused at once.
        try "sync down every=1h\nfrom http://127.0.0.1:1\nto http://127.0.0.1:1\nrule team/app -> team/app\n"
            .write(toFile: directory + "/sync", atomically: true, encoding: .utf8)
        let lines = CapturedLines()
        let logger = Logger(label: "sync-test") { _ in CapturingLogHandler(lines: lines) }
        let service = ScheduledSync(
            jobs: try SyncJobs(syncFile: directory + "/sync"), statePath: directory + "/state.json", master: nil, logger: logger,
            tick: .milliseconds(10), retryAfter: .milliseconds(100))
        let running = Task { try await service.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while lines.retries.count < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        running.cancel()
        _ = try? await running.value
        #expect(Array(lines.retries.prefix(3)) == ["100ms", "200ms", "400ms"], "\(lines.all)")
        #expect(lines.all.contains { $0.contains("sync job down: team/app: cannot list its tags") }, "\(lines.all)")
    }
}

/// Log lines, as a test's logger saw them.
final class CapturedLines: Sendable {
    private let lines = Mutex<[String]>([])
    func append(_ line: String) { lines.withLock { $0.append(line) } }
    var all: [String] { lines.withLock { $0 } }
    /// The delays of "tried again in …" lines, in order.
    var retries: [String] { all.compactMap { $0.components(separatedBy: "tried again in ").dropFirst().first } }
}

/// Keeps every message at any level.
struct CapturingLogHandler: LogHandler {
    let lines: CapturedLines
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        lines.append(event.message.description)
    }
}

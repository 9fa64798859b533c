import Foundation
import Logging
import MetaServer
import SpeedyCore
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
}

import Foundation
import SpeedyCore
import Synchronization

/// Reports a long job's progress to the master (`POST /v1/jobs`) about once a second, so
/// `speedy-console` shows it with its rate and time left. Reporting never slows or fails the
/// job: a report the master does not take is dropped, and the next one carries the totals.
public final class JobReporter: Sendable {
    private struct State {
        var report: JobReport
        var lastSent: ContinuousClock.Instant?
        var sending = false
    }

    private let client: MasterClient
    private let state: Mutex<State>

    /// A job of `kind` (one of ``JobReport/kinds``) on `target` (`group 1`), reported to `client`'s master.
    public init(kind: String, target: String, client: MasterClient) {
        self.client = client
        let id = UUID().uuidString.lowercased()
        state = Mutex(State(report: JobReport(id: id, kind: kind, target: String(target.prefix(JobReport.maxText)), state: .running, done: 0, total: 0, bytes: 0)))
    }

    /// Records progress; sends it when a second has passed since the last report.
    public func progress(done: Int, total: Int, bytes: UInt64, totalBytes: UInt64? = nil) {
        let due: JobReport? = state.withLock { s in
            s.report.done = done
            s.report.total = total
            s.report.bytes = bytes
            s.report.totalBytes = totalBytes
            let now = ContinuousClock.now
            guard !s.sending, s.lastSent.map({ now - $0 >= .seconds(1) }) ?? true else { return nil }
            s.sending = true
            s.lastSent = now
            return s.report
        }
        guard let due else { return }
        let client = self.client
        Task {
            try? await client.reportJob(due)
            self.state.withLock { $0.sending = false }
        }
    }

    /// Says the job ended, `finished` or `failed`, with a sentence for people; waits (briefly)
    /// for the master to take it.
    public func end(_ outcome: JobReport.State, message: String? = nil) async {
        let report = state.withLock { s in
            s.report.state = outcome
            s.report.message = message.map { String($0.prefix(JobReport.maxText)) }
            return s.report
        }
        try? await client.reportJob(report)
    }

    /// Runs `body`; if it throws, says the job failed, with the error, before passing it on.
    public func endingOnFailure<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            await end(.failed, message: "\(error)")
            throw error
        }
    }
}

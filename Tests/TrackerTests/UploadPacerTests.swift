import Foundation
import SpeedyTestSupport
import Synchronization
import Testing

@testable import PeerAgent

/// The agent's upload pacer (`--upload-rate`) on its own (issue 23): its booking rule checked on
/// made-up instants, so the pace is proven without sleeping, and one short run on the real clock
/// with pieces taken from many tasks at once.
@Suite("Node agent: upload pacer")
struct UploadPacerTests {
    let base = ContinuousClock.now

    /// Seconds from `base` to `instant`.
    func seconds(_ instant: ContinuousClock.Instant) -> Double {
        let (whole, atto) = (instant - base).components
        return Double(whole) + Double(atto) / 1e18
    }

    @Test func withoutARateNothingWaits() async throws {
        for pacer in [UploadPacer(bytesPerSecond: nil), UploadPacer(bytesPerSecond: 0)] {
            #expect(pacer.bytesPerSecond == nil)
            #expect(pacer.book(64 << 20, now: base) == nil)
            let started = ContinuousClock.now
            for _ in 0..<100 { try await pacer.take(64 << 20) }
            // Paced at any rate, 6.4 GiB would take far longer; a loaded machine still fits in 5 s.
            #expect(ContinuousClock.now - started < .seconds(5), "an unpaced take returns at once")
        }
        // Nothing to send books nothing, paced or not.
        let paced = UploadPacer(bytesPerSecond: 1_000_000, slack: .zero)
        #expect(paced.book(0, now: base) == nil)
        #expect(paced.book(-5, now: base) == nil)
        #expect(paced.book(100_000, now: base) == base, "the first piece goes at once")
    }

    @Test func piecesAskedForAtOnceAreSpacedByTheirCost() {
        // 1 MB/s, no slack: ten pieces of 100 kB asked for at the same instant go 100 ms apart.
        let pacer = UploadPacer(bytesPerSecond: 1_000_000, slack: .zero)
        let starts = (0..<10).map { _ in pacer.book(100_000, now: base)! }
        for (index, start) in starts.enumerated() {
            #expect(abs(seconds(start) - Double(index) * 0.1) < 1e-6, "piece \(index) at \(seconds(start)) s")
        }
        // The last one goes 0.9 s after the first: ten pieces take at least 0.9 s.
        #expect(seconds(starts[9]) >= 0.9 - 1e-6)
    }

    @Test func slackIsAShortBurstAtTheStartAndAfterAPauseNoMore() {
        // 1 MB/s with 100 ms of slack: 100 kB may go at once on top of the pace.
        let pacer = UploadPacer(bytesPerSecond: 1_000_000, slack: .milliseconds(100))
        let first = pacer.book(100_000, now: base)!
        let second = pacer.book(100_000, now: base)!
        let third = pacer.book(100_000, now: base)!
        #expect(first <= base && second <= base, "the burst: two pieces at once")
        #expect(abs(seconds(third) - 0.1) < 1e-6)
        // Ten idle seconds later the pacer has not saved up ten seconds of sending, only the slack.
        let later = base + .seconds(10)
        let burst = (0..<5).map { _ in pacer.book(100_000, now: later)! }
        #expect(burst.filter { $0 <= later }.count == 2, "\(burst.map(seconds))")
        #expect(abs(seconds(burst[4]) - 10.3) < 1e-6)
    }

    @Test func noScheduleSendsMoreThanTheRatePlusTheSlack() {
        // Pieces of random sizes asked for at random moments (some at once, some after pauses):
        // before each piece goes, what went before it is within rate × elapsed + rate × slack.
        var random = SeededGenerator(seed: 23)
        for (rate, slackMs) in [(UInt64(1_000_000), 0), (65_536, 100), (50_000_000, 250)] {
            let pacer = UploadPacer(bytesPerSecond: rate, slack: .milliseconds(slackMs))
            var now = base
            var sent = 0.0
            for _ in 0..<2_000 {
                if Int.random(in: 0..<4, using: &random) == 0 {
                    now += .microseconds(Int64.random(in: 0..<2_000_000, using: &random))
                }
                let bytes = Int.random(in: 1...(256 << 10), using: &random)
                let start = pacer.book(bytes, now: now)!
                let goes = max(start, now)
                let allowed = Double(rate) * (seconds(goes) + Double(slackMs) / 1000)
                // Each piece's cost is rounded down to the nanosecond: a byte or so over a long run.
                let rounding = 1 + Double(rate) * 2e-6
                #expect(sent <= allowed + rounding, "rate \(rate): \(sent) bytes by \(seconds(goes)) s")
                if sent > allowed + rounding { return }
                sent += Double(bytes)
            }
            // And it does not hold back either: the whole run ends about when the rate says.
            let end = max(pacer.book(1, now: now)!, now)
            #expect(seconds(end) <= sent / Double(rate) + seconds(now) + 0.001)
        }
    }

    @Test func aHugePieceOrATinyRateDoesNotOverflow() {
        let pacer = UploadPacer(bytesPerSecond: 1, slack: .zero)
        #expect(pacer.book(Int.max, now: base) == base)
        #expect(pacer.book(1, now: base)! > base + .seconds(86_400))
        #expect(UploadPacer.cost(of: 1_000_000, rate: 1_000_000) == .seconds(1))
    }

    @Test func concurrentTakesKeepThePaceOnTheRealClock() async throws {
        // 1 MB/s, no slack, ten pieces of 100 kB from ten tasks at once: at least 0.9 s in all,
        // and at no instant has more gone than the rate allows (the piece leaving at it aside).
        // No upper bound: a loaded machine (CI's two cores) may wake the tasks late, and how
        // fast is a benchmark's business, not a test's.
        let pacer = UploadPacer(bytesPerSecond: 1_000_000, slack: .zero)
        let start = ContinuousClock.now
        let returned = Returned()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<10 {
                group.addTask {
                    try await pacer.take(100_000)
                    let at = ContinuousClock.now - start
                    returned.list.withLock { $0.append(at) }
                }
            }
            try await group.waitForAll()
        }
        let instants = returned.list.withLock { $0 }.sorted().map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 }
        #expect(instants.count == 10)
        #expect(instants.last! >= 0.9 - 0.005, "\(instants)")
        for (index, at) in instants.enumerated() {
            // `index` pieces went before this one: at most rate × elapsed (+ 5 ms of clock slop).
            let before = Double(index * 100_000)
            #expect(before <= 1_000_000 * (at + 0.005), "piece \(index + 1) returned at \(at) s after \(before) bytes")
        }
    }

    /// The instants the takes returned, from many tasks.
    final class Returned: Sendable {
        let list = Mutex<[Duration]>([])
    }
}

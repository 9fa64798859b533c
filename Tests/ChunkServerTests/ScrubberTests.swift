import ChunkStorage
import Foundation
import Logging
import NIOCore
import SpeedyCore
import SpeedyTestSupport
import Synchronization
import Testing

@testable import ChunkServer

/// The background scrub over a real volume store: it finds damage a read would find, reports
/// each damaged chunk once, goes on from where a restart left it, and speeds up for a deadline.
@Suite("Scrubber")
struct ScrubberTests {
    /// Chunks of 4096 bytes: record `i` (from 0) starts at `i * (32 + 4096)` in the first volume.
    static let chunkSize = 4096

    static func recordOffset(_ index: Int) -> UInt64 { UInt64(index * (32 + chunkSize)) }

    /// A store of group 1 holding chunks 1...count.
    func makeStore(_ dir: TemporaryDirectory, count: Int) async throws -> VolumeChunkStore {
        let store = try VolumeChunkStore(
            configuration: VolumeStoreConfiguration(directory: dir.path, volumeSize: 8 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0))
        for id in 1...count {
            _ = try await store.put(ChunkKey(group: 1, fileId: UInt64(id)), data: ByteBuffer(repeating: UInt8(id), count: Self.chunkSize), crc: nil)
        }
        return store
    }

    /// Overwrites bytes of the first volume under the open store, as a failing disk would.
    func damage(_ dir: TemporaryDirectory, at offset: UInt64) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: dir.path + "/volume-000001.dat"))
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data([0xde, 0xad, 0xbe, 0xef]))
        try handle.close()
    }

    /// What the scrubber told the master, in order.
    final class Reports: Sendable {
        let damaged = Mutex<[UInt64]>([])
    }

    func makeScrubber(_ store: VolumeChunkStore, _ dir: TemporaryDirectory, every: Duration = .seconds(3600), reports: Reports) -> Scrubber {
        Scrubber(
            store: store, membership: GroupMembership(fixed: 1), settings: .init(rate: 1 << 30, every: every), directory: dir.path, counters: TrafficCounters(),
            logger: Logger(label: "scrub-test")
        ) { fileId, _ in reports.damaged.withLock { $0.append(fileId) } }
    }

    /// Runs the scrubber until `done` holds (at most 20 s), then stops it.
    func scrub(_ scrubber: Scrubber, until done: @escaping @Sendable () -> Bool) async throws {
        let task = Task { try await scrubber.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while !done(), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        task.cancel()
        _ = try? await task.value
        #expect(done(), "the scrub did not get there in 20 s: \(scrubber.report())")
    }

    @Test func aPassFindsDamageInPayloadAndHeaderAndReportsEachOnce() async throws {
        let dir = try TemporaryDirectory("scrub")
        defer { dir.remove() }
        let store = try await makeStore(dir, count: 20)
        // Chunk 4's payload, chunk 9's header (its file id field), chunk 20's last bytes.
        try damage(dir, at: Self.recordOffset(3) + 32 + 100)
        try damage(dir, at: Self.recordOffset(8) + 16)
        try damage(dir, at: Self.recordOffset(19) + 32 + UInt64(Self.chunkSize) - 4)
        let reports = Reports()
        let scrubber = makeScrubber(store, dir, reports: reports)
        try await scrub(scrubber) { scrubber.report().passes == 1 }
        let report = scrubber.report()
        #expect(report.damaged == [4, 9, 20])
        #expect(report.damagedFound == 3)
        #expect(report.checkedChunks == 20)
        #expect(report.checkedBytes == UInt64(20 * Self.chunkSize))
        #expect(report.lastFullPassMs != nil)
        #expect(reports.damaged.withLock { $0 } == [4, 9, 20])
        // A client's read of a chunk already known damaged tells the master nothing new.
        await scrubber.noteDamaged(9, why: "found by a read")
        #expect(reports.damaged.withLock { $0 }.count == 3)

        // A good copy put over a damaged one (as the master's repair does) takes it off the list.
        try await store.delete(ChunkKey(group: 1, fileId: 4))
        _ = try await store.put(ChunkKey(group: 1, fileId: 4), data: ByteBuffer(repeating: 4, count: Self.chunkSize), crc: nil)
        try await scrub(scrubber) { !scrubber.report().damaged.contains(4) }
        #expect(scrubber.report().damaged == [9, 20])
        await store.close()
    }

    @Test func aRestartGoesOnFromWhereThePassStopped() async throws {
        let dir = try TemporaryDirectory("scrub-resume")
        defer { dir.remove() }
        let store = try await makeStore(dir, count: 10)
        // The saved progress of a pass that had checked chunks 1...6 when the server stopped.
        var saved = Scrubber.Progress()
        saved.passStartedMs = currentTimeMillis()
        saved.running = true
        saved.position = 6
        saved.checkedChunks = 6
        saved.checkedBytes = UInt64(6 * Self.chunkSize)
        saved.passBytes = UInt64(10 * Self.chunkSize)
        try JSONEncoder().encode(saved).write(to: URL(fileURLWithPath: dir.path + "/scrub.json"))
        // Damage before the saved position is not re-read in this pass; damage after it is.
        try damage(dir, at: Self.recordOffset(1) + 32 + 10)
        try damage(dir, at: Self.recordOffset(7) + 32 + 10)
        let scrubber = makeScrubber(store, dir, reports: Reports())
        try await scrub(scrubber) { scrubber.report().passes == 1 }
        #expect(scrubber.report().checkedChunks == 10)
        #expect(scrubber.report().damaged == [8])
        // And what it saved on the way out is what a next start reads.
        let reloaded = makeScrubber(store, dir, reports: Reports())
        #expect(reloaded.report().passes == 1)
        #expect(reloaded.report().damaged == [8])
        await store.close()
    }

    @Test func aPassSpeedsUpToMeetItsDeadlineAndSlowsForClients() async throws {
        let dir = try TemporaryDirectory("scrub-pace")
        defer { dir.remove() }
        let store = try await makeStore(dir, count: 1)
        let scrubber = Scrubber(
            store: store, membership: GroupMembership(fixed: 1), settings: .init(rate: 1000, every: .seconds(100)), directory: dir.path, counters: TrafficCounters(),
            logger: Logger(label: "scrub-test")
        ) { _, _ in }
        scrubber.progress.withLock { p in
            p.running = true
            p.passStartedMs = currentTimeMillis()
            p.passBytes = 1_000_000
        }
        // 1 MB left and about 100 s to go: 10 kB/s, though the rate says 1 kB/s.
        #expect((9_000...10_500).contains(scrubber.pace(busy: false)))
        scrubber.progress.withLock { $0.passBytes = 0 }
        #expect(scrubber.pace(busy: false) == 1000)
        #expect(scrubber.pace(busy: true) == 250)
        await store.close()
    }
}

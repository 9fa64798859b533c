import ChunkStorage
import Foundation
import NIOCore
import SpeedyCore
import Testing
import SpeedyTestSupport

/// Online compaction (docs/storage-format.md): space comes back, live chunks stay byte for byte,
/// deletes stay deleted across every kind of restart, and a removal cut short is finished.
@Suite("Volume compaction")
struct VolumeCompactionTests {
    /// Volumes of 2 MiB hold nine chunks of 200 kB.
    func configuration(_ dir: TemporaryDirectory) -> VolumeStoreConfiguration {
        VolumeStoreConfiguration(
            directory: dir.path, volumeSize: 2 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0, capacityBytes: nil, maxBatchBytes: 4 << 20)
    }

    func key(_ id: UInt64) -> ChunkKey { ChunkKey(group: 1, fileId: id) }
    func data(_ id: UInt64) -> ByteBuffer { payload(200_000, seed: id) }

    func volumeFiles(_ dir: TemporaryDirectory) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { VolumeFile.id(fromFileName: $0) != nil }.sorted()
    }

    /// Every id in `live` reads back its bytes, every id in `gone` is absent.
    func check(_ store: VolumeChunkStore, live: [UInt64], gone: [UInt64]) async throws {
        for id in live { #expect(try await store.get(key(id)) == data(id), "chunk \(id)") }
        for id in gone { #expect(store.info(key(id)) == nil, "chunk \(id) came back") }
    }

    @Test func compactionGivesSpaceBackAndKeepsEveryLiveChunkAcrossRestarts() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        for id in 1...40 as ClosedRange<UInt64> { _ = try await store.put(key(id), data: data(id), crc: nil) }
        let before = store.volumeStats()
        #expect(before.count >= 4)
        // Three of every four chunks of the first two volumes go.
        let doomed = (1...18 as ClosedRange<UInt64>).filter { $0 % 4 != 0 }
        let live = (1...40 as ClosedRange<UInt64>).filter { !doomed.contains($0) }
        for id in doomed { try await store.delete(key(id)) }
        let sealed = store.volumeStats().filter { !$0.active && $0.liveFraction < 0.5 }
        #expect(sealed.map(\.id) == [1, 2])
        let filesBefore = try volumeFiles(dir)

        // Reads go on while it runs.
        let reader = Task {
            var (reads, bad) = (0, 0)
            while !Task.isCancelled {
                for id in live.prefix(8) {
                    do {
                        if try await store.get(key(id)) != data(id) { bad += 1; print("READ \(id) wrong bytes") }
                    } catch where !Task.isCancelled {
                        bad += 1
                        print("READ \(id) failed: \(error)")
                    } catch {}
                }
                reads += 1
            }
            return (reads, bad)
        }
        let reports = try await store.compactAll(threshold: 0.5, bytesPerSecond: 0)
        reader.cancel()
        let (reads, bad) = await reader.value
        #expect(reads > 0)
        #expect(bad == 0)
        #expect(reports.map(\.volume) == [1, 2])
        #expect(reports.reduce(0) { $0 + $1.chunksMoved } == 20 - doomed.count)
        #expect(reports.allSatisfy { $0.bytesReclaimed == (2 << 20) - $0.bytesMoved })
        let filesAfter = try volumeFiles(dir)
        #expect(!filesAfter.contains(VolumeFile.fileName(id: 1)) && !filesAfter.contains(VolumeFile.fileName(id: 2)))
        #expect(filesAfter.count < filesBefore.count)
        #expect(store.compactionTotals.volumes == 2)
        try await check(store, live: live, gone: doomed)
        #expect(store.usage().chunkCount == UInt64(live.count))
        await store.close()

        // From the checkpoint, then from a full scan of what is left.
        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.recovery.usedCheckpoint)
        try await check(reopened, live: live, gone: doomed)
        await reopened.close()
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")
        let rescanned = try VolumeChunkStore(configuration: configuration(dir))
        #expect(!rescanned.recovery.usedCheckpoint)
        try await check(rescanned, live: live, gone: doomed)
        await rescanned.close()
    }

    @Test func tombstonesAreKeptWhileAnOlderVolumeHoldsWhatTheyDelete() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        // Volume 1 holds ten chunks; the eleventh starts volume 2.
        for id in 1...11 as ClosedRange<UInt64> { _ = try await store.put(key(id), data: data(id), crc: nil) }
        #expect(store.volumeStats().count == 2)
        // The deletes' tombstones land in volume 2, their records stay in volume 1.
        for id in 1...7 as ClosedRange<UInt64> { try await store.delete(key(id)) }
        for id in 12...30 as ClosedRange<UInt64> { _ = try await store.put(key(id), data: data(id), crc: nil) }
        let report = try await store.compact(volume: 2, bytesPerSecond: 0)
        #expect(report.tombstonesKept == 7)
        let live = Array(8...30 as ClosedRange<UInt64>)
        let deleted = Array(1...7 as ClosedRange<UInt64>)
        await store.close()

        // A full scan sees volume 1's old records, then the copied tombstones: still deleted.
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")
        let rescanned = try VolumeChunkStore(configuration: configuration(dir))
        try await check(rescanned, live: live, gone: deleted)
        // Once volume 1 is gone too, nothing is left for them to delete.
        let second = try await rescanned.compact(volume: 1, bytesPerSecond: 0)
        #expect(second.chunksMoved == 3)
        let later = try await rescanned.compactAll(threshold: 0.99, bytesPerSecond: 0)
        #expect(later.allSatisfy { $0.tombstonesKept == 0 || $0.volume > 2 })
        await rescanned.close()
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")
        let again = try VolumeChunkStore(configuration: configuration(dir))
        try await check(again, live: live, gone: deleted)
        await again.close()
    }

    @Test func aRemovalCutShortIsFinishedAtTheNextOpen() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        for id in 1...30 as ClosedRange<UInt64> { _ = try await store.put(key(id), data: data(id), crc: nil) }
        for id in 1...8 as ClosedRange<UInt64> { try await store.delete(key(id)) }
        let path = dir.path + "/" + VolumeFile.fileName(id: 1)
        try FileManager.default.copyItem(atPath: path, toPath: path + ".saved")
        _ = try await store.compact(volume: 1, bytesPerSecond: 0)
        // As if killed between the checkpoint and the unlink: the file is back, the checkpoint
        // no longer names it. Its old records must not be read over the newer ones.
        try FileManager.default.moveItem(atPath: path + ".saved", toPath: path)
        for id in 9...12 as ClosedRange<UInt64> { try await store.delete(key(id)) }
        try store.checkpoint()

        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(!FileManager.default.fileExists(atPath: path))
        try await check(reopened, live: Array(13...30), gone: Array(1...12))
        await reopened.close()
    }

    @Test func storedTimesSurviveACheckpointAndScannedRecordsAreNeverOlderThanTheTruth() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        _ = try await store.put(key(1), data: data(1), crc: nil)
        let stored = try #require(store.storedMs(key(1)))
        try store.checkpoint()
        _ = try await store.put(key(2), data: data(2), crc: nil)
        let secondStored = try #require(store.storedMs(key(2)))
        try await Task.sleep(for: .milliseconds(50))
        // Abandoned without close: chunk 2 is found by the scan, chunk 1 in the checkpoint.
        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.storedMs(key(1)) == stored)
        #expect(try #require(reopened.storedMs(key(2))) >= secondStored + 50)
        await reopened.close()
        await store.close()
    }
}

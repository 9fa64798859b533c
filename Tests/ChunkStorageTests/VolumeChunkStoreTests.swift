import ChunkStorage
import Foundation
import NIOCore
import SpeedyCore
import Testing
import SpeedyTestSupport

/// What only the volume store promises: durability across restarts and crashes, torn tails
/// dropped, damage detected, fsyncs shared, space guarded.
@Suite("VolumeChunkStore")
struct VolumeChunkStoreTests {
    func configuration(_ dir: TemporaryDirectory, volumeSize: Int = 8 << 20, capacity: UInt64? = nil, reserve: UInt64 = 0)
        -> VolumeStoreConfiguration
    {
        VolumeStoreConfiguration(
            directory: dir.path, volumeSize: volumeSize, maxChunkBytes: 1 << 20, reserveBytes: reserve,
            capacityBytes: capacity, maxBatchBytes: 4 << 20)
    }

    var volume1: String { VolumeFile.fileName(id: 1) }

    @Test func restartAfterCloseUsesTheCheckpoint() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        for id in 1...20 as ClosedRange<UInt64> {
            _ = try await store.put(ChunkKey(group: 1, fileId: id), data: payload(30_000, seed: id), crc: nil)
        }
        try await store.delete(ChunkKey(group: 1, fileId: 4))
        await store.close()

        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.recovery.usedCheckpoint)
        #expect(reopened.recovery.recordsScanned == 0)
        #expect(reopened.recovery.chunks == 19)
        await #expect(throws: ChunkStoreError.notFound(ChunkKey(group: 1, fileId: 4))) {
            try await reopened.get(ChunkKey(group: 1, fileId: 4))
        }
        for id in (1...20 as ClosedRange<UInt64>) where id != 4 {
            #expect(try await reopened.get(ChunkKey(group: 1, fileId: id)) == payload(30_000, seed: id))
        }
        await reopened.close()
    }

    @Test func crashWithoutCloseLosesNothingAcknowledged() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // The first store is abandoned without close(): as after kill -9, only fsynced bytes count.
        let crashed = try VolumeChunkStore(configuration: configuration(dir))
        for id in 1...10 as ClosedRange<UInt64> {
            _ = try await crashed.put(ChunkKey(group: 1, fileId: id), data: payload(50_000, seed: id), crc: nil)
        }
        try await crashed.delete(ChunkKey(group: 1, fileId: 2))

        let recovered = try VolumeChunkStore(configuration: configuration(dir))
        #expect(recovered.recovery.recordsScanned == 11)
        #expect(recovered.recovery.tornTails == 0)
        #expect(recovered.usage().chunkCount == 9)
        for id in (1...10 as ClosedRange<UInt64>) where id != 2 {
            #expect(try await recovered.get(ChunkKey(group: 1, fileId: id)) == payload(50_000, seed: id))
        }
        await recovered.close()
    }

    @Test func tornTailIsDroppedAndWritingResumes() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        var end = 0
        for id in 1...3 as ClosedRange<UInt64> {
            _ = try await store.put(ChunkKey(group: 1, fileId: id), data: payload(10_000, seed: id), crc: nil)
            end += RecordHeader.recordSize(payloadLength: 10_000)
        }
        await store.close()
        // A crash mid-write: a valid header promising 200 KB, of which only 1 KB reached the disk.
        let torn = payload(200_000, seed: 9)
        var header = [UInt8](repeating: 0, count: RecordHeader.size)
        header.withUnsafeMutableBytes {
            RecordHeader(key: ChunkKey(group: 1, fileId: 4), length: 200_000, payloadCRC: CRC32C.checksum(torn)).encode(into: $0)
        }
        try overwrite(path: dir.path + "/" + volume1, at: end, with: header + Array(torn.readableBytesView.prefix(1000)))

        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.recovery.tornTails == 1)
        #expect(reopened.usage().chunkCount == 3)
        #expect(reopened.info(ChunkKey(group: 1, fileId: 4)) == nil)
        // The torn bytes are zeroed, so a shorter record written there ends cleanly on the next open.
        _ = try await reopened.put(ChunkKey(group: 1, fileId: 5), data: payload(100, seed: 5), crc: nil)
        await reopened.close()
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")

        let again = try VolumeChunkStore(configuration: configuration(dir))
        #expect(again.recovery.tornTails == 0)
        #expect(again.recovery.recordsScanned == 4)
        #expect(try await again.get(ChunkKey(group: 1, fileId: 5)) == payload(100, seed: 5))
        await again.close()
    }

    @Test func garbageAfterTheLastRecordIsATornTail() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        _ = try await store.put(ChunkKey(group: 1, fileId: 1), data: payload(1000, seed: 1), crc: nil)
        await store.close()
        try overwrite(
            path: dir.path + "/" + volume1, at: RecordHeader.recordSize(payloadLength: 1000),
            with: Array(payload(3000, seed: 77).readableBytesView))
        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.recovery.tornTails == 1)
        #expect(try await reopened.get(ChunkKey(group: 1, fileId: 1)) == payload(1000, seed: 1))
        await reopened.close()
    }

    @Test func corruptRecordIsReportedNeverReturned() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        let a = ChunkKey(group: 1, fileId: 1)
        let b = ChunkKey(group: 1, fileId: 2)
        _ = try await store.put(a, data: payload(5000, seed: 1), crc: nil)
        _ = try await store.put(b, data: payload(5000, seed: 2), crc: nil)
        await store.close()
        // Flip one byte in the middle of A's payload, as a failing disk would.
        let path = dir.path + "/" + volume1
        let at = RecordHeader.size + 2500
        let original = try readBytes(path: path, at: at, count: 1)[0]
        try overwrite(path: path, at: at, with: [original ^ 0x40])

        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        let crc = CRC32C.checksum(payload(5000, seed: 1))
        await #expect {
            try await reopened.get(a)
        } throws: { error in
            guard case ChunkStoreError.corrupt(let key, let expected, let actual) = error else { return false }
            return key == a && expected == crc && actual != crc
        }
        #expect(try await reopened.get(b) == payload(5000, seed: 2))
        #expect(reopened.usage().crcErrors == 1)
        await reopened.close()

        // A full scan keeps the damaged record (acknowledged data, to be repaired) and all after it.
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")
        let scanned = try VolumeChunkStore(configuration: configuration(dir))
        #expect(scanned.recovery.corruptRecords == 1)
        #expect(scanned.recovery.tornTails == 0)
        #expect(scanned.info(a) != nil)
        #expect(try await scanned.get(b) == payload(5000, seed: 2))
        await scanned.close()
    }

    @Test func damagedCheckpointFallsBackToAFullScan() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        for id in 1...5 as ClosedRange<UInt64> {
            _ = try await store.put(ChunkKey(group: 3, fileId: id), data: payload(2000, seed: id), crc: nil)
        }
        await store.close()
        try overwrite(path: dir.path + "/index.checkpoint", at: 30, with: [0xFF, 0xFF])
        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(!reopened.recovery.usedCheckpoint)
        #expect(reopened.recovery.recordsScanned == 5)
        #expect(reopened.list(group: 3, after: 0, limit: 10).map(\.fileId) == [1, 2, 3, 4, 5])
        await reopened.close()
    }

    @Test func concurrentWritesShareFsyncs() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir, volumeSize: 32 << 20))
        let writers = 64
        let payloads = (1...writers).map { payload(64 << 10, seed: UInt64($0)) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for id in 1...writers {
                group.addTask {
                    _ = try await store.put(ChunkKey(group: 1, fileId: UInt64(id)), data: payloads[id - 1], crc: nil)
                }
            }
            try await group.waitForAll()
        }
        let usage = store.usage()
        #expect(usage.chunkCount == UInt64(writers))
        #expect(usage.syncCount >= 1)
        #expect(usage.syncCount < UInt64(writers / 2), "group commit should batch concurrent writes into few fsyncs")
        await store.close()
    }

    @Test func writesRollOverIntoNewVolumes() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir, volumeSize: 1 << 20))
        for id in 1...10 as ClosedRange<UInt64> {
            _ = try await store.put(ChunkKey(group: 1, fileId: id), data: payload(300_000, seed: id), crc: nil)
        }
        await store.close()
        let volumes = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".dat") }
        #expect(volumes.count == 4)
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")
        let reopened = try VolumeChunkStore(configuration: configuration(dir, volumeSize: 1 << 20))
        #expect(reopened.recovery.volumes == 4)
        for id in 1...10 as ClosedRange<UInt64> {
            #expect(try await reopened.get(ChunkKey(group: 1, fileId: id)) == payload(300_000, seed: id))
        }
        await reopened.close()
    }

    @Test func readOnlyUnderTheReserve() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir, capacity: 2 << 20, reserve: 1 << 20))
        _ = try await store.put(ChunkKey(group: 1, fileId: 1), data: payload(600_000, seed: 1), crc: nil)
        #expect(store.usage().health == .writable)
        // This write dips under the reserve: accepted, and the store turns read-only after it.
        _ = try await store.put(ChunkKey(group: 1, fileId: 2), data: payload(600_000, seed: 2), crc: nil)
        let usage = store.usage()
        #expect(usage.totalBytes == 2 << 20)
        #expect(usage.freeBytes < 1 << 20)
        #expect(usage.health == .full)
        await #expect {
            try await store.put(ChunkKey(group: 1, fileId: 3), data: payload(10, seed: 3), crc: nil)
        } throws: { error in
            if case ChunkStoreError.readOnly = error { return true }
            return false
        }
        #expect(store.info(ChunkKey(group: 1, fileId: 3)) == nil)
        // Reads and deletes still work when writes do not.
        #expect(try await store.get(ChunkKey(group: 1, fileId: 1)) == payload(600_000, seed: 1))
        try await store.delete(ChunkKey(group: 1, fileId: 1))
        await store.close()
    }
}

@Suite("Record and checkpoint formats")
struct FormatTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        var streamed = CRC32C()
        streamed.update(ByteBuffer(string: "12345"))
        streamed.update(ByteBuffer(string: "6789"))
        #expect(streamed.value == 0xE306_9283)
    }

    @Test func headerRoundTripsAndRejectsDamage() {
        let header = RecordHeader(key: ChunkKey(group: 7, fileId: 1 << 40), length: 4 << 20, payloadCRC: 0xDEAD_BEEF)
        var bytes = [UInt8](repeating: 0, count: RecordHeader.size)
        bytes.withUnsafeMutableBytes { header.encode(into: $0) }
        #expect(bytes.withUnsafeBytes { RecordHeader.decode($0) } == .header(header))
        #expect(Array(bytes[0..<4]) == Array("SPDR".utf8))
        bytes[13] ^= 1
        #expect(bytes.withUnsafeBytes { RecordHeader.decode($0) } == .invalid)
        #expect([UInt8](repeating: 0, count: 32).withUnsafeBytes { RecordHeader.decode($0) } == .empty)
        #expect(RecordHeader.recordSize(payloadLength: 1) == 40)
        #expect(RecordHeader.recordSize(payloadLength: 8) == 40)
        #expect(RecordHeader.recordSize(payloadLength: 0) == 32)
    }

    @Test func checkpointRoundTripsAndRejectsTruncation() {
        let checkpoint = IndexCheckpoint(
            volumeEnds: [1: 4096, 2: 123],
            entries: [
                ChunkKey(group: 1, fileId: 5): ChunkLocation(volume: 1, offset: 0, length: 10, crc: 1),
                ChunkKey(group: 2, fileId: 6): ChunkLocation(volume: 2, offset: 80, length: 20, crc: 2),
            ])
        let bytes = checkpoint.encoded()
        #expect(IndexCheckpoint(decoding: bytes) == checkpoint)
        #expect(IndexCheckpoint(decoding: Array(bytes.dropLast())) == nil)
        #expect(IndexCheckpoint(decoding: IndexCheckpoint(volumeEnds: [:], entries: [:]).encoded()) == IndexCheckpoint(volumeEnds: [:], entries: [:]))
    }
}

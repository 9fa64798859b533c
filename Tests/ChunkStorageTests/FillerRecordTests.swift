import Foundation
import NIOCore
import SpeedyCore
import SpeedyTestSupport
import Testing

@testable import ChunkStorage

#if canImport(Glibc)
import Glibc
#endif

/// Large chunks go to the disk straight from the buffer they arrived in: a filler record before
/// each puts its payload at the same place within a block in the file as in memory, so the
/// O_DIRECT write needs no aligned copy. Fillers hold no chunk, survive restarts and compaction
/// unseen, and are version-1 records an older reader takes for a chunk of group 0.
@Suite("Filler records")
struct FillerRecordTests {
    func configuration(_ dir: TemporaryDirectory) -> VolumeStoreConfiguration {
        VolumeStoreConfiguration(
            directory: dir.path, volumeSize: 48 << 20, maxChunkBytes: 8 << 20, reserveBytes: 0, capacityBytes: nil, maxBatchBytes: 16 << 20)
    }

    /// Chunks of many sizes in buffers at many addresses (pooled, plain, read from past a few bytes).
    func chunks() -> [(key: ChunkKey, data: ByteBuffer)] {
        let sizes = [1 << 20, (3 << 20) + 5, 4 << 20, (2 << 20) + 24, 100_000, (1 << 20) + 4095, 5_000_000]
        return sizes.enumerated().map { index, size in
            let bytes = TestBytes.random(size + 40, seed: index + 1)
            var buffer = index % 2 == 0 ? ChunkBufferPool.allocator.buffer(capacity: size + 40) : ByteBuffer()
            buffer.writeBytes(bytes)
            buffer.moveReaderIndex(forwardBy: 8 * index % 40)
            buffer.moveWriterIndex(to: buffer.readerIndex + size)
            return (ChunkKey(group: 3, fileId: UInt64(index + 1)), buffer)
        }
    }

    @Test func largePayloadsStartWhereTheirMemoryDoesWithinABlock() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try VolumeChunkStore(configuration: configuration(dir))
        let chunks = chunks()
        for (key, data) in chunks {
            _ = try await store.put(key, data: data, crc: nil)
            let extent = try #require(await store.extent(key))
            let address = data.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
            if data.readableBytes >= VolumeChunkStore.fillerMinimumPayload {
                #expect(extent.offset % VolumeFile.directAlignment == address % VolumeFile.directAlignment, "\(key)")
            }
        }
        for (key, data) in chunks { #expect(try await store.get(key) == data) }
        await store.close()

        // A restart that scans every volume (no checkpoint) finds the chunks and no fillers.
        try FileManager.default.removeItem(atPath: dir.path + "/index.checkpoint")
        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.recovery.recordsScanned == chunks.count)
        #expect(reopened.recovery.corruptRecords == 0 && reopened.recovery.tornTails == 0)
        #expect(reopened.usage().chunkCount == chunks.count)
        #expect(reopened.list(group: 0, after: 0, limit: 100).isEmpty, "no filler is listed as a chunk")
        for (key, data) in chunks { #expect(try await reopened.get(key) == data) }
        await reopened.close()
    }

    /// A record that fits at the end of a volume without its filler goes there without one:
    /// the filler never starts a new volume.
    @Test func aFillerNeverRollsTheVolume() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let volumeSize = 8 << 20
        let store = try VolumeChunkStore(
            configuration: VolumeStoreConfiguration(
                directory: dir.path, volumeSize: volumeSize, maxChunkBytes: 8 << 20, reserveBytes: 0, capacityBytes: nil,
                maxBatchBytes: 16 << 20))
        let first = ChunkKey(group: 3, fileId: 1)
        _ = try await store.put(first, data: payload(2 << 20, seed: 1), crc: nil)
        let end = try #require(await store.extent(first)).offset - RecordHeader.size + RecordHeader.recordSize(payloadLength: 2 << 20)
        // Exactly the rest of the volume, filler or not.
        let rest = volumeSize - end - RecordHeader.size
        let last = ChunkKey(group: 3, fileId: 2)
        var data = ChunkBufferPool.allocator.buffer(capacity: rest + 64)
        data.writeBytes(TestBytes.random(rest + 64, seed: 2))
        // Shifted until it would want a filler, so that one would not fit.
        while VolumeChunkStore.fillerSize(before: data, at: end) == 0 { data.moveReaderIndex(forwardBy: 8) }
        data.moveWriterIndex(to: data.readerIndex + rest)
        _ = try await store.put(last, data: data, crc: nil)
        #expect(try #require(await store.extent(last)).offset == end + RecordHeader.size, "in the first volume, without a filler")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/" + VolumeFile.fileName(id: 2)))
        #expect(try await store.get(last) == data)
        await store.close()
    }

    /// A checkpoint from an older version, which read a filler as a chunk of group 0, loads
    /// without it: nothing is listed or counted, and no compaction waits for it.
    @Test func anOlderVersionsFillerEntryIsDroppedOnLoad() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let key = ChunkKey(group: 3, fileId: 1)
        let store = try VolumeChunkStore(configuration: configuration(dir))
        _ = try await store.put(key, data: payload(2 << 20, seed: 3), crc: nil)
        await store.close()
        let path = dir.path + "/index.checkpoint"
        var saved = try #require(IndexCheckpoint.load(from: path))
        let location = try #require(saved.entries[key])
        saved.entries[RecordHeader.fillerKey] = ChunkLocation(volume: location.volume, offset: 0, length: 8, crc: 0)
        try saved.save(to: path)

        let reopened = try VolumeChunkStore(configuration: configuration(dir))
        #expect(reopened.recovery.usedCheckpoint)
        #expect(reopened.usage().chunkCount == 1)
        #expect(reopened.list(group: 0, after: 0, limit: 10).isEmpty)
        #expect(try await reopened.get(key) == payload(2 << 20, seed: 3))
        await reopened.close()
    }

    @Test func aFillerIsAVersionOneRecordOfGroupZero() throws {
        let filler = RecordHeader.filler(recordSize: 4096 + 40)
        #expect(filler.recordSize == 4096 + 40 && filler.isFiller && !filler.isTombstone)
        #expect(filler.payloadCRC == CRC32C.checksum([UInt8](repeating: 0, count: 4096 + 8)))
        var bytes = [UInt8](repeating: 0, count: RecordHeader.size)
        bytes.withUnsafeMutableBytes { filler.encode(into: $0) }
        guard case .header(let decoded) = bytes.withUnsafeBytes({ RecordHeader.decode($0) }) else {
            Issue.record("a filler's header does not decode")
            return
        }
        #expect(decoded.version == 1 && decoded.key == ChunkKey(group: 0, fileId: 0) && decoded.isFiller)
        #expect(!RecordHeader(key: ChunkKey(group: 0, fileId: 0), length: 0, payloadCRC: 0, tombstone: true).isFiller)
        #expect(!RecordHeader(key: ChunkKey(group: 1, fileId: 0), length: 8, payloadCRC: 0).isFiller)
    }

    @Test func theFillerLeavesThePayloadOnItsMemorysPlaceInABlock() {
        var buffer = ByteBuffer(repeating: 1, count: 2 << 20)
        // Checked plainly and reported once: 8,192 expectations would cost seconds of a shared core.
        var wrong: [String] = []
        for shift in stride(from: 0, to: 64, by: 8) {
            buffer.moveReaderIndex(to: shift)
            let address = buffer.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
            for offset in stride(from: 0, to: 8192, by: 8) {
                let filler = VolumeChunkStore.fillerSize(before: buffer, at: offset)
                let sized = filler == 0 || (filler >= RecordHeader.size && filler % 8 == 0 && filler < 4096 + RecordHeader.size)
                if !sized || (offset + filler + RecordHeader.size) % 4096 != address % 4096 {
                    wrong.append("shift \(shift) offset \(offset): filler \(filler)")
                }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
        #expect(VolumeChunkStore.fillerSize(before: ByteBuffer(repeating: 1, count: 100_000), at: 40) == 0, "small payloads get none")
    }

    @Test func aWriteGoesFromTheCallersMemoryOnlyWhenItsBlocksLineUpWithTheFile() throws {
        let a = VolumeFile.directAlignment
        var pointer: UnsafeMutableRawPointer?
        #expect(posix_memalign(&pointer, a, 2 << 20) == 0)
        defer { free(pointer) }
        let payload = UnsafeRawBufferPointer(start: pointer, count: 2 << 20)
        let header = UnsafeRawBufferPointer(start: pointer, count: 32)  // any 32 bytes
        // The payload at a block boundary of the file: its blocks go as they are.
        let lined = try #require(VolumeFile.DirectPlan([header, payload], at: 3 * a - 32))
        #expect(lined.inPlace?.baseAddress == payload.baseAddress && lined.range == 32..<(32 + (2 << 20)))
        // Off by 8 bytes: through the staging buffer, the same block-aligned range of the file.
        let off = try #require(VolumeFile.DirectPlan([header, payload], at: 3 * a - 24))
        #expect(off.inPlace == nil && off.range == 24..<(24 + (2 << 20)))

        // Either way the file holds exactly the bytes.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let volume = try VolumeFile(creatingAt: dir.path + "/" + VolumeFile.fileName(id: 1), id: 1, size: 8 << 20)
        let bytes = UnsafeMutableRawBufferPointer(start: pointer, count: 2 << 20)
        for i in 0..<bytes.count { bytes[i] = UInt8(truncatingIfNeeded: i &* 7 &+ i >> 12) }
        let head = [UInt8](repeating: 0xAB, count: 32)
        try head.withUnsafeBytes { h in
            try volume.write([h, payload], at: 3 * a - 32)
            try volume.write([h, payload], at: (4 << 20) + 8)
        }
        try volume.sync()
        for start in [3 * a - 32, (4 << 20) + 8] {
            var read = [UInt8](repeating: 0, count: 32 + payload.count)
            try read.withUnsafeMutableBytes { try volume.read(into: $0, at: start) }
            #expect(read == head + [UInt8](payload), "at \(start)")
        }
    }
}

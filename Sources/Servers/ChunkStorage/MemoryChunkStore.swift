import NIOCore
import SpeedyCore
import Synchronization

/// A ``ChunkStore`` in memory: the reference the shared conformance suite checks the volume
/// store against, and a stand-in where a test needs a store but not a disk. Nothing is durable.
public final class MemoryChunkStore: ChunkStore {
    private struct State {
        var chunks: [ChunkKey: ByteBuffer] = [:]
        var stored: [ChunkKey: ContinuousClock.Instant] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    private let maxChunkBytes: Int

    /// Creates an empty store taking chunks up to `maxChunkBytes`.
    public init(maxChunkBytes: Int = 16 << 20) { self.maxChunkBytes = maxChunkBytes }

    public func put(_ key: ChunkKey, data: ByteBuffer, crc: UInt32?, dataCRC: UInt32?) async throws(ChunkStoreError) -> ChunkInfo {
        guard data.readableBytes <= maxChunkBytes else { throw .tooLarge(length: data.readableBytes, limit: maxChunkBytes) }
        let actual = dataCRC ?? CRC32C.checksum(data)
        assert(dataCRC == nil || dataCRC == CRC32C.checksum(data), "dataCRC must be the CRC of data")
        if let crc, crc != actual { throw .checksumMismatch(expected: crc, actual: actual) }
        let info = ChunkInfo(fileId: key.fileId, length: UInt32(data.readableBytes), crc: actual)
        try state.withLock { (s) throws(ChunkStoreError) in
            if s.closed { throw .closed }
            if let existing = s.chunks[key] {
                let stored = ChunkInfo(fileId: key.fileId, length: UInt32(existing.readableBytes), crc: CRC32C.checksum(existing))
                guard stored == info else { throw .alreadyExists(key, stored: stored) }
                return
            }
            s.chunks[key] = data
            s.stored[key] = .now
        }
        return info
    }

    public func get(_ key: ChunkKey) async throws(ChunkStoreError) -> ByteBuffer {
        try state.withLock { (s) throws(ChunkStoreError) in
            if s.closed { throw .closed }
            guard let data = s.chunks[key] else { throw .notFound(key) }
            return data
        }
    }

    /// Always nil: the chunks are in memory, not in a file.
    public func extent(_ key: ChunkKey) async -> ChunkExtent? { nil }

    public func info(_ key: ChunkKey) -> ChunkInfo? {
        state.withLock { s in
            s.chunks[key].map { ChunkInfo(fileId: key.fileId, length: UInt32($0.readableBytes), crc: CRC32C.checksum($0)) }
        }
    }

    public func delete(_ key: ChunkKey) async throws(ChunkStoreError) {
        try state.withLock { (s) throws(ChunkStoreError) in
            if s.closed { throw .closed }
            guard s.chunks.removeValue(forKey: key) != nil else { throw .notFound(key) }
            s.stored[key] = nil
        }
    }

    public func list(group: UInt32, after: UInt64, limit: Int) -> [ChunkInfo] {
        state.withLock { s in
            s.chunks.filter { $0.key.group == group && $0.key.fileId > after }
                .sorted { $0.key.fileId < $1.key.fileId }
                .prefix(max(0, limit))
                .map { ChunkInfo(fileId: $0.key.fileId, length: UInt32($0.value.readableBytes), crc: CRC32C.checksum($0.value)) }
        }
    }

    public func digests(group: UInt32, from: UInt64, to: UInt64, parts: Int) -> [ChunkRangeDigest] {
        var digester = RangeDigester(from: from, to: to, parts: parts)
        state.withLock { s in
            for (key, data) in s.chunks where key.group == group { digester.add(fileId: key.fileId, crc: CRC32C.checksum(data)) }
        }
        return digester.digests
    }

    public func ageMs(_ key: ChunkKey) -> Int64? {
        state.withLock { $0.stored[key].map { Int64((ContinuousClock.now - $0) / .milliseconds(1)) } }
    }

    public func usage() -> StorageUsage {
        state.withLock { s in
            let bytes = s.chunks.values.reduce(0) { $0 + UInt64($1.readableBytes) }
            return StorageUsage(
                totalBytes: 1 << 40, usedBytes: bytes, freeBytes: (1 << 40) - bytes, chunkCount: UInt64(s.chunks.count),
                chunkBytes: bytes, health: .writable, crcErrors: 0, ioErrors: 0, pendingWrites: 0, syncCount: 0)
        }
    }

    public func close() async { state.withLock { $0.closed = true } }
}

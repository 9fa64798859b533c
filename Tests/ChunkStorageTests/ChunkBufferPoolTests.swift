import NIOCore
import SpeedyCore
import Testing

/// Chunk buffers are reused rather than mapped afresh, and the pool never keeps more than its limit.
@Suite("ChunkBufferPool", .serialized)
struct ChunkBufferPoolTests {
    func address(_ buffer: ByteBuffer) -> UInt {
        buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func freedChunkBuffersAreReusedUpToTheLimit() {
        ChunkBufferPool.setLimit(8 << 20)
        defer { ChunkBufferPool.setLimit(32 << 20) }
        let before = ChunkBufferPool.pooledBytes
        var first: ByteBuffer? = ChunkBufferPool.allocator.buffer(capacity: 4 << 20)
        first!.writeRepeatingByte(7, count: 4 << 20)
        let reused = address(first!)
        first = nil
        #expect(ChunkBufferPool.pooledBytes == before + (4 << 20))

        // The same block comes back for the next buffer of that size, and its bytes are whatever
        // the buffer writes (ByteBuffer never exposes bytes it has not written).
        var second = ChunkBufferPool.allocator.buffer(capacity: 4 << 20)
        second.writeRepeatingByte(9, count: 100)
        #expect(address(second) == reused)
        #expect(second.readableBytes == 100 && second.readableBytesView.allSatisfy { $0 == 9 })

        // Three more 4 MiB buffers freed: only what fits under the 8 MiB limit stays.
        var many: [ByteBuffer] = (0..<3).map { _ in ChunkBufferPool.allocator.buffer(capacity: 4 << 20) }
        many.removeAll()
        #expect(ChunkBufferPool.pooledBytes <= 8 << 20)
        _ = second

        // Growing past the block copies what was written; small buffers work as usual.
        var growing = ChunkBufferPool.allocator.buffer(capacity: 1 << 20)
        growing.writeRepeatingByte(1, count: 1 << 20)
        growing.writeRepeatingByte(2, count: 3 << 20)
        #expect(growing.readableBytes == 4 << 20)
        #expect(growing.getInteger(at: (1 << 20) - 1, as: UInt8.self) == 1 && growing.getInteger(at: 1 << 20, as: UInt8.self) == 2)
        var small = ChunkBufferPool.allocator.buffer(capacity: 10)
        small.writeString("hello, pool")
        #expect(String(buffer: small) == "hello, pool")
    }
}

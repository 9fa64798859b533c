import NIOCore
import SpeedyCore
import Testing

/// A chunk kept as the pieces it arrived in must read exactly as the gathered bytes would:
/// every slice, across every piece boundary, and the CRC.
@Suite("ChunkBytes")
struct ChunkBytesTests {
    @Test func slicesAndCRCMatchTheGatheredBytes() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        // Pieces of uneven sizes, one empty, one with bytes before its reader index.
        var cuts = [0, 1, 1, 64, 300, 301, 777, 1000]
        cuts.sort()
        var pieces: [ByteBuffer] = []
        for (from, to) in zip(cuts, cuts.dropFirst()) {
            var buffer = ByteBuffer(bytes: [0xEE, 0xEE] + bytes[from..<to])
            buffer.moveReaderIndex(forwardBy: 2)
            pieces.append(buffer)
        }
        let chunk = ChunkBytes(pieces)
        #expect(chunk.readableBytes == bytes.count)
        #expect(chunk.crc32c == CRC32C.checksum(bytes))
        #expect(Array(chunk.gathered().readableBytesView) == bytes)
        for start in [0, 1, 63, 64, 65, 299, 300, 301, 776, 777, 999, 1000] {
            for length in [0, 1, 2, 236, 700, 1000 - start] where start + length <= bytes.count {
                let slices = chunk.slice(from: start, length: length)
                #expect(slices.flatMap { Array($0.readableBytesView) } == Array(bytes[start..<(start + length)]), "\(start) +\(length)")
                #expect(!slices.contains { $0.readableBytes == 0 }, "no empty slice to write")
            }
        }
    }
}

import NIOCore
import SpeedyCore
import SpeedyTestSupport
import Testing

/// CRC-32C as every role computes it (three interleaved streams of the CPU's instruction, joined
/// by shifts) against a bit-at-a-time reference written from the definition.
@Suite struct CRC32CTests {
    /// The definition: reflected polynomial 0x82F63B78, register starting at and ending inverted.
    static func reference(_ bytes: some Sequence<UInt8>, from crc: UInt32 = 0) -> UInt32 {
        var register = ~crc
        for byte in bytes {
            register ^= UInt32(byte)
            for _ in 0..<8 { register = register & 1 == 1 ? (register >> 1) ^ 0x82F6_3B78 : register >> 1 }
        }
        return ~register
    }

    static func random(_ count: Int, seed: UInt64) -> [UInt8] { TestBytes.random(count, seed: Int(seed)) }

    @Test func knownVectors() {
        // RFC 3720 (iSCSI), appendix B.4, and the usual check value.
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum([]) == 0)
    }

    /// Lengths around every boundary the streams have (8 bytes, 3 × 256, 3 × 8192 and their
    /// multiples), at unaligned starts.
    @Test func everyLengthAroundTheStreamBoundariesMatchesTheDefinition() {
        let data = Self.random(3 * 8192 * 2 + 3 * 256 + 64, seed: 7)
        var lengths = Array(0...40)
        for boundary in [3 * 256, 3 * 8192, 2 * 3 * 8192, 3 * 8192 + 3 * 256] {
            lengths += (boundary - 9)...(boundary + 9)
        }
        let wanted = Set(lengths)
        for start in [0, 1, 3, 7] {
            // The definition's value for every wanted length from `start`, in one pass (a pass per
            // length costs seconds unoptimized, on a thread every other test shares).
            var expected: [Int: UInt32] = [0: 0]
            var register: UInt32 = ~0
            for (index, byte) in data[start...].enumerated() {
                register = ~Self.reference(CollectionOfOne(byte), from: ~register)
                if wanted.contains(index + 1) { expected[index + 1] = ~register }
            }
            for length in lengths where start + length <= data.count {
                let slice = data[start..<(start + length)]
                #expect(CRC32C.checksum(Array(slice)) == expected[length], "start \(start), length \(length)")
            }
        }
    }

    /// A chunk fed in pieces of any size checksums the same as fed at once (how a streamed body
    /// is checked).
    @Test func piecesGiveTheSameChecksumAsTheWhole() {
        let data = Self.random(300_007, seed: 11)
        let whole = CRC32C.checksum(data)
        #expect(whole == Self.reference(data))
        for piece in [1, 4095, 8192, 24_577, 65_536, 1 << 20] {  // the last is more than the whole
            var crc = CRC32C()
            var buffer = ByteBuffer(bytes: data)
            while buffer.readableBytes > 0 {
                crc.update(buffer.readSlice(length: min(piece, buffer.readableBytes))!)
            }
            #expect(crc.value == whole, "pieces of \(piece)")
        }
    }
}

import CSpeedy
import NIOCore

/// CRC-32C (Castagnoli), the checksum every chunk carries on disk and on the wire.
///
/// A value type so a checksum can be built up over a streamed body piece by piece.
public struct CRC32C: Sendable, Hashable {
    /// The checksum of everything fed in so far.
    public private(set) var value: UInt32

    /// Starts an empty checksum (the CRC of zero bytes, 0).
    public init() { self.value = 0 }

    /// Feeds more bytes into the checksum.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        value = speedy_crc32c_extend(value, base, bytes.count)
    }

    /// Feeds the readable bytes of a buffer into the checksum.
    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { update($0) }
    }

    /// The checksum of one buffer's readable bytes.
    public static func checksum(_ buffer: ByteBuffer) -> UInt32 {
        var crc = CRC32C()
        crc.update(buffer)
        return crc.value
    }

    /// The checksum of a byte array.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var crc = CRC32C()
        bytes.withUnsafeBytes { crc.update($0) }
        return crc.value
    }

    /// Whether the CPU's CRC instruction is doing the work (for benchmark reports).
    public static var isHardwareAccelerated: Bool { speedy_crc32c_is_hardware() != 0 }
}

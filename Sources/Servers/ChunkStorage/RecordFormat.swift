import SpeedyCore

/// The on-disk layout of one record in a volume file, format version 1.
///
/// Written down field by field in docs/storage-format.md; all integers little-endian.
///
/// ```
/// offset size field
///      0    4 magic          "SPDR" (0x52445053 read as little-endian UInt32)
///      4    1 version        1
///      5    1 flags          bit 0: tombstone (a delete; length is 0)
///      6    2 reserved       0
///      8    4 group id
///     12    4 payload length
///     16    8 file id
///     24    4 payload CRC-32C
///     28    4 header CRC-32C over bytes 0..<28
///     32    n payload
///   32+n    p zero padding to the next multiple of 8
/// ```
public struct RecordHeader: Sendable, Equatable {
    /// `"SPDR"` as a little-endian UInt32.
    public static let magic: UInt32 = 0x5244_5053
    /// The format version this code writes.
    public static let currentVersion: UInt8 = 1
    /// Bytes in a header.
    public static let size = 32
    /// Records start at multiples of this.
    public static let alignment = 8

    /// Flag bit marking a delete.
    public static let tombstoneFlag: UInt8 = 1

    public var version: UInt8
    public var flags: UInt8
    public var group: UInt32
    public var length: UInt32
    public var fileId: UInt64
    public var payloadCRC: UInt32

    /// Creates a header for a chunk or, with `tombstone`, for its delete.
    public init(key: ChunkKey, length: UInt32, payloadCRC: UInt32, tombstone: Bool = false) {
        self.version = Self.currentVersion
        self.flags = tombstone ? Self.tombstoneFlag : 0
        self.group = key.group
        self.length = length
        self.fileId = key.fileId
        self.payloadCRC = payloadCRC
    }

    /// The key of filler records: group 0, which holds no chunks (a spare serves no group).
    public static let fillerKey = ChunkKey(group: 0, fileId: 0)

    /// A filler of `recordSize` bytes in all (a multiple of 8, at least a header): zeros, placed
    /// before a large record so its payload starts in the file where its memory starts in a
    /// block, and is written with `O_DIRECT` straight from the buffer it arrived in. Readers skip
    /// fillers; one written by this version is a valid version-1 record, which an older reader
    /// takes for a chunk of group 0 that no role asks for.
    public static func filler(recordSize: Int) -> RecordHeader {
        precondition(recordSize >= size && recordSize % alignment == 0)
        let zeros = [UInt8](repeating: 0, count: recordSize - size)
        return RecordHeader(key: fillerKey, length: UInt32(zeros.count), payloadCRC: CRC32C.checksum(zeros))
    }

    /// The chunk the record is about.
    public var key: ChunkKey { ChunkKey(group: group, fileId: fileId) }
    /// Whether the record is a filler (``filler(recordSize:)``), which holds no chunk.
    public var isFiller: Bool { !isTombstone && key == Self.fillerKey }
    /// Whether the record deletes its key.
    public var isTombstone: Bool { flags & Self.tombstoneFlag != 0 }
    /// Bytes the whole record takes in the volume, padding included.
    public var recordSize: Int { Self.recordSize(payloadLength: Int(length)) }

    /// Bytes a record with a payload of `payloadLength` takes, padding included.
    public static func recordSize(payloadLength: Int) -> Int {
        (size + payloadLength + alignment - 1) / alignment * alignment
    }

    /// Writes the 32 header bytes into `out`.
    public func encode(into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= Self.size)
        out.storeBytes(of: Self.magic.littleEndian, toByteOffset: 0, as: UInt32.self)
        out.storeBytes(of: version, toByteOffset: 4, as: UInt8.self)
        out.storeBytes(of: flags, toByteOffset: 5, as: UInt8.self)
        out.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
        out.storeBytes(of: group.littleEndian, toByteOffset: 8, as: UInt32.self)
        out.storeBytes(of: length.littleEndian, toByteOffset: 12, as: UInt32.self)
        out.storeBytes(of: fileId.littleEndian, toByteOffset: 16, as: UInt64.self)
        out.storeBytes(of: payloadCRC.littleEndian, toByteOffset: 24, as: UInt32.self)
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: out[0..<28]))
        out.storeBytes(of: crc.value.littleEndian, toByteOffset: 28, as: UInt32.self)
    }

    /// What a 32-byte header region holds.
    public enum Decoded: Sendable, Equatable {
        /// A valid header.
        case header(RecordHeader)
        /// All zero: never written (the end of a volume's data).
        case empty
        /// Non-zero but not a valid header: a torn write or damage.
        case invalid
    }

    /// Decodes a header from the first 32 bytes of `bytes`.
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> Decoded {
        precondition(bytes.count >= size)
        if bytes[0..<size].allSatisfy({ $0 == 0 }) { return .empty }
        let magic = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self))
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<28]))
        let storedCRC = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        guard magic == Self.magic, crc.value == storedCRC else { return .invalid }
        let version = bytes[4]
        guard version == 1 else { return .invalid }
        var header = RecordHeader(
            key: ChunkKey(
                group: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
                fileId: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))),
            length: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)),
            payloadCRC: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt32.self)))
        header.version = version
        header.flags = bytes[5]
        return .header(header)
    }
}

import SpeedyCore

/// Where a chunk's record sits: the in-memory index maps each ``SpeedyCore/ChunkKey`` to one.
public struct ChunkLocation: Sendable, Equatable {
    /// The volume holding the record.
    public var volume: UInt32
    /// Byte offset of the record's header in the volume.
    public var offset: UInt64
    /// Payload length.
    public var length: UInt32
    /// Payload CRC-32C.
    public var crc: UInt32
    /// When the chunk was stored, in milliseconds since the epoch, never later than the truth:
    /// records found by a scan rather than in the checkpoint get the time of the scan. Garbage
    /// collection only takes chunks older than its grace period.
    public var storedMs: Int64

    /// Creates a location.
    public init(volume: UInt32, offset: UInt64, length: UInt32, crc: UInt32, storedMs: Int64 = currentTimeMillis()) {
        self.volume = volume
        self.offset = offset
        self.length = length
        self.crc = crc
        self.storedMs = storedMs
    }

    /// Bytes the record takes in its volume, header and padding included.
    public var recordSize: Int { RecordHeader.recordSize(payloadLength: Int(length)) }
}

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

    /// Creates a location.
    public init(volume: UInt32, offset: UInt64, length: UInt32, crc: UInt32) {
        self.volume = volume
        self.offset = offset
        self.length = length
        self.crc = crc
    }
}

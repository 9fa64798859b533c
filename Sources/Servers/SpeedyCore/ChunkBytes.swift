import NIOCore

/// A chunk's bytes as the pieces they arrived in from the network, not gathered into one buffer:
/// a reader checks them (``crc32c``) and writes them on (``slice(from:length:)``) without the
/// copy a gathering would cost.
public struct ChunkBytes: Sendable {
    /// The pieces, in order.
    public let pieces: [ByteBuffer]
    /// The bytes in all pieces.
    public let readableBytes: Int

    /// The bytes of `pieces`, in order.
    public init(_ pieces: [ByteBuffer]) {
        self.pieces = pieces
        self.readableBytes = pieces.reduce(0) { $0 + $1.readableBytes }
    }

    /// The CRC-32C of all the bytes, piece after piece.
    public var crc32c: UInt32 {
        var crc = CRC32C()
        for piece in pieces { crc.update(piece) }
        return crc.value
    }

    /// Bytes `start..<start+length` as slices of the pieces (no copy). Precondition: the range
    /// lies within ``readableBytes``.
    public func slice(from start: Int, length: Int) -> [ByteBuffer] {
        precondition(start >= 0 && length >= 0 && start + length <= readableBytes, "slice out of the chunk")
        var slices: [ByteBuffer] = []
        var skip = start
        var left = length
        for piece in pieces where left > 0 {
            let size = piece.readableBytes
            if skip >= size {
                skip -= size
                continue
            }
            let take = min(size - skip, left)
            slices.append(piece.getSlice(at: piece.readerIndex + skip, length: take)!)
            skip = 0
            left -= take
        }
        return slices
    }

    /// All the bytes in one buffer (a copy, unless there is one piece).
    public func gathered() -> ByteBuffer {
        if pieces.count == 1 { return pieces[0] }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(readableBytes)
        for piece in pieces { buffer.writeImmutableBuffer(piece) }
        return buffer
    }
}

import Logging
import SpeedyCore

/// Rebuilds index entries by reading a volume's records in order: how a chunkserver recovers
/// what was written after its last checkpoint, and the only recovery needed, since every record
/// describes itself.
///
/// Telling a torn tail from damage in the middle: records are appended in order and only the
/// last, not yet fsynced batch can be torn by a crash. A bad record with no valid header anywhere
/// after it is that torn tail and is dropped (it was never acknowledged). A bad record followed by
/// valid ones is damage to data that was acknowledged: it is kept in the index so reads report it
/// as corrupt and repair can replace it from another replica.
struct VolumeScanner {
    let volume: VolumeFile
    let maxChunkBytes: Int
    let logger: Logger

    /// What one scan found.
    struct Outcome {
        /// Where the volume's valid data ends: the next record goes here.
        var end: Int
        /// True when bytes after `end` were a torn write, not clean zeros.
        var tornTail: Bool
        /// Records scanned.
        var records = 0
        /// Records kept although their payload fails its CRC.
        var corruptRecords = 0
        /// Damaged regions skipped to reach the next valid header.
        var skippedRegions = 0
    }

    /// Scans from `start`, calling `apply` for every record but fillers (with whether its payload is intact).
    func scan(from start: Int, apply: (RecordHeader, _ offset: Int) -> Void) throws(ChunkStoreError) -> Outcome {
        var outcome = Outcome(end: start, tornTail: false)
        var offset = start
        var header = [UInt8](repeating: 0, count: RecordHeader.size)
        var payload = [UInt8](repeating: 0, count: 0)
        while offset + RecordHeader.size <= volume.size {
            try header.withUnsafeMutableBytes { b in
                Result { () throws(ChunkStoreError) in try volume.read(into: b, at: offset) }
            }.get()
            let decoded = header.withUnsafeBytes { RecordHeader.decode($0) }
            if decoded == .empty {
                outcome.end = offset
                return outcome
            }
            guard let h = record(decoded, at: offset) else {
                // Not a record: either the torn tail or a damaged header we must skip over.
                if let next = try nextHeader(after: offset) {
                    logger.error("volume \(volume.id): damaged bytes at \(offset)..<\(next) skipped")
                    outcome.skippedRegions += 1
                    offset = next
                    continue
                }
                outcome.end = offset
                outcome.tornTail = true
                return outcome
            }
            if !h.isTombstone {
                if try payloadCRC(of: h, at: offset, buffer: &payload) != h.payloadCRC {
                    guard try nextHeader(after: offset) != nil else {
                        outcome.end = offset
                        outcome.tornTail = true
                        return outcome
                    }
                    if h.isFiller {
                        logger.error("volume \(volume.id): filler at \(offset) fails its CRC (damaged bytes, no chunk among them)")
                    } else {
                        logger.error("volume \(volume.id): chunk \(h.key) at \(offset) fails its CRC; kept for repair")
                    }
                    outcome.corruptRecords += 1
                }
            }
            if !h.isFiller {
                apply(h, offset)
                outcome.records += 1
            }
            offset += h.recordSize
        }
        outcome.end = offset
        return outcome
    }

    /// The header decoded at `offset` if a record can start there: valid, inside the volume, no
    /// longer than a chunk may be, and a tombstone only without payload.
    private func record(_ decoded: RecordHeader.Decoded, at offset: Int) -> RecordHeader? {
        guard case .header(let h) = decoded else { return nil }
        let fits = offset + h.recordSize <= volume.size && Int(h.length) <= maxChunkBytes
        return fits && (!h.isTombstone || h.length == 0) ? h : nil
    }

    /// The CRC-32C of the payload of the record `header` at `offset`, read into `buffer` (grown
    /// when it is too small).
    private func payloadCRC(of header: RecordHeader, at offset: Int, buffer: inout [UInt8]) throws(ChunkStoreError) -> UInt32 {
        let length = Int(header.length)
        if buffer.count < length { buffer = [UInt8](repeating: 0, count: length) }
        return try buffer.withUnsafeMutableBytes { b in
            Result { () throws(ChunkStoreError) -> UInt32 in
                let slice = UnsafeMutableRawBufferPointer(rebasing: b[0..<length])
                try volume.read(into: slice, at: offset + RecordHeader.size)
                var crc = CRC32C()
                crc.update(UnsafeRawBufferPointer(slice))
                return crc.value
            }
        }.get()
    }

    /// The offset of the first valid record header after `offset`, searching to the volume's end.
    func nextHeader(after offset: Int) throws(ChunkStoreError) -> Int? {
        let blockSize = 1 << 20
        var block = [UInt8](repeating: 0, count: blockSize + RecordHeader.size)
        var base = (offset / RecordHeader.alignment + 1) * RecordHeader.alignment
        while base + RecordHeader.size <= volume.size {
            let count = min(block.count, volume.size - base)
            try block.withUnsafeMutableBytes { b in
                Result { () throws(ChunkStoreError) in
                    try volume.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<count]), at: base)
                }
            }.get()
            let found: Int? = block.withUnsafeBytes { b in
                var at = 0
                while at + RecordHeader.size <= count {
                    if b.loadUnaligned(fromByteOffset: at, as: UInt32.self) == RecordHeader.magic.littleEndian,
                        case .header = RecordHeader.decode(UnsafeRawBufferPointer(rebasing: b[at..<(at + RecordHeader.size)]))
                    {
                        return at
                    }
                    at += RecordHeader.alignment
                }
                return nil
            }
            if let found { return base + found }
            base += blockSize
        }
        return nil
    }
}

import Foundation
import SpeedyCore

/// Checks both stores make on what they are asked to keep, before any database call: numbers a
/// caller sends are never trusted to fit.
enum MetadataChecks {
    /// Both databases keep file ids as signed 64-bit integers.
    static func chunks(_ chunks: [ChunkRef]) throws(MetadataError) {
        guard chunks.allSatisfy({ $0.fileId <= UInt64(Int64.max) }) else { throw .invalid("a file id is above \(Int64.max)") }
    }

    /// The sum of the chunks' lengths, nil when it overflows.
    static func length(of chunks: [ChunkRef]) -> UInt64? {
        var sum: UInt64 = 0
        for chunk in chunks {
            let (next, overflow) = sum.addingReportingOverflow(UInt64(chunk.length))
            if overflow { return nil }
            sum = next
        }
        return sum
    }

    /// A blob's size is the sum of its chunks' lengths and fits the databases.
    static func blob(_ record: BlobRecord) throws(MetadataError) {
        try chunks(record.chunks)
        guard record.size <= UInt64(Int64.max), length(of: record.chunks) == record.size else {
            throw .invalid("blob size \(record.size) is not the sum of its chunks")
        }
    }

    /// An upload moves from `expected` by exactly the chunks' lengths, within the databases' range.
    static func append(expected: UInt64, chunks: [ChunkRef], newOffset: UInt64) throws(MetadataError) {
        try Self.chunks(chunks)
        guard let added = length(of: chunks), case let (sum, false) = expected.addingReportingOverflow(added), sum == newOffset,
            newOffset <= UInt64(Int64.max)
        else {
            throw .invalid("new offset \(newOffset) is not the old offset plus the chunks' lengths")
        }
    }

    /// A chunk's copy holds the same bytes (length and CRC) under another key.
    static func move(from: ChunkRef, to: ChunkRef) throws(MetadataError) {
        try chunks([from, to])
        guard from.length == to.length, from.crc == to.crc else { throw .invalid("a moved chunk keeps its length and CRC") }
        guard from.key != to.key else { throw .invalid("chunk \(from.key) cannot be moved onto itself") }
    }

    /// A page size within 0...10000 (the registry asks for at most 1000).
    static func pageLimit(_ limit: Int) -> Int { min(max(0, limit), 10_000) }
}

extension UploadSession {
    /// A new, empty session in `repository`, once `limits` are checked to make sense.
    static func starting(in repository: String, limits: UploadLimits) throws(MetadataError) -> UploadSession {
        guard limits.perRepository >= 0, limits.perClient >= 0 else { throw .invalid("upload limits must not be negative") }
        return UploadSession(
            id: UUID().uuidString.lowercased(), repository: repository, offset: 0, chunks: [], hashState: SHA256Hasher().savedState,
            createdMs: currentTimeMillis())
    }
}

import SpeedyCore

/// [from, to) cut into near-equal contiguous ranges of file ids, and the count and hash of the
/// chunks added to each: what every ``ChunkStore/digests(group:from:to:parts:)`` answers, so that
/// every store cuts a range the same way and replicas' answers line up part by part.
struct RangeDigester: Sendable {
    /// The digests so far, one per part, in order.
    private(set) var digests: [ChunkRangeDigest] = []
    private let from: UInt64
    /// Every part is `width` ids wide, the first `wider` of them one more.
    private let width: UInt64
    private let wider: UInt64

    /// Cuts [from, to) into `parts` ranges, or into `to - from` when that is fewer (so no range is
    /// empty); no ranges at all when `from >= to` or `parts < 1`.
    init(from: UInt64, to: UInt64, parts: Int) {
        self.from = from
        guard from < to, parts >= 1 else {
            (width, wider) = (1, 0)
            return
        }
        let span = to - from
        let count = min(UInt64(parts), span)
        (width, wider) = span.quotientAndRemainder(dividingBy: count)
        // Boundary i is from + width·i + min(i, wider): never past `to`, so nothing overflows.
        digests.reserveCapacity(Int(count))
        for i in 0..<count {
            let start = from + width * i + min(i, wider)
            let end = start + width + (i < wider ? 1 : 0)
            digests.append(ChunkRangeDigest(from: start, to: end, count: 0, hash: 0))
        }
    }

    /// The part holding `fileId`, nil outside [from, to).
    func part(of fileId: UInt64) -> Int? {
        guard let last = digests.last, fileId >= from, fileId < last.to else { return nil }
        let offset = fileId - from
        // The first `wider` parts take wider·(width + 1) ids; width + 1 cannot overflow when wider > 0.
        if wider > 0 {
            let wide = wider * (width + 1)
            if offset < wide { return Int(offset / (width + 1)) }
            return Int(wider + (offset - wide) / width)
        }
        return Int(offset / width)
    }

    /// Counts a chunk into its part; one outside [from, to) is left out.
    mutating func add(fileId: UInt64, crc: UInt32) {
        guard let i = part(of: fileId) else { return }
        digests[i].count += 1
        digests[i].hash &+= ChunkRangeDigest.chunkHash(fileId: fileId, crc: crc)
    }
}

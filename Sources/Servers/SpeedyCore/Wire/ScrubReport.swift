/// Where a chunkserver's background scrub stands: carried by every heartbeat, shown by the
/// console, `chunktool status` and `/metrics`.
///
/// A pass reads every chunk the server holds in file id order and checks its CRC. Passes start
/// at most every `--scrub-every`, and a pass that would miss that deadline speeds up to meet it.
public struct ScrubReport: Sendable, Codable, Equatable {
    /// Wall-clock milliseconds when the current (or, between passes, the last) pass began.
    public var passStartedMs: Int64
    /// Whether a pass is reading now; false while waiting for the next one.
    public var running: Bool
    /// The last file id the current pass checked (0 before its first chunk).
    public var position: UInt64
    /// Chunks and bytes the current pass has checked.
    public var checkedChunks: UInt64
    public var checkedBytes: UInt64
    /// Live chunk payload bytes when the pass began: the fraction done is `checkedBytes` of it.
    public var passBytes: UInt64
    /// Wall-clock milliseconds when the last full pass ended; nil before the first.
    public var lastFullPassMs: Int64?
    /// Full passes finished since the data directory was made.
    public var passes: UInt64
    /// The pace right now, in bytes per second (lower while clients keep the disk busy).
    public var bytesPerSec: Double
    /// File ids of chunks that failed their CRC or their read and are not yet repaired, at most
    /// ``maxDamagedListed`` of them; the server serves none of them.
    public var damaged: [UInt64]
    /// Damaged chunks found since the data directory was made, by scrubs and by reads.
    public var damagedFound: UInt64

    /// Damaged chunks listed in one heartbeat; the rest wait for the next ones.
    public static let maxDamagedListed = 1000

    /// Creates a report.
    public init(
        passStartedMs: Int64, running: Bool, position: UInt64, checkedChunks: UInt64, checkedBytes: UInt64, passBytes: UInt64,
        lastFullPassMs: Int64?, passes: UInt64, bytesPerSec: Double, damaged: [UInt64], damagedFound: UInt64
    ) {
        self.passStartedMs = passStartedMs
        self.running = running
        self.position = position
        self.checkedChunks = checkedChunks
        self.checkedBytes = checkedBytes
        self.passBytes = passBytes
        self.lastFullPassMs = lastFullPassMs
        self.passes = passes
        self.bytesPerSec = bytesPerSec
        self.damaged = damaged
        self.damagedFound = damagedFound
    }

    /// How far the current pass is, from 0 to 1 (1 between passes).
    public var fraction: Double {
        guard running else { return 1 }
        guard passBytes > 0 else { return 0 }
        return min(1, Double(checkedBytes) / Double(passBytes))
    }
}

/// A chunk no member of its group holds intact: reported until an operator deals with it, with
/// the blobs that use it.
public struct LostChunk: Sendable, Codable, Equatable {
    /// The chunk's group and file id.
    public var group: UInt32
    public var fileId: UInt64
    /// Wall-clock milliseconds when the master found it lost.
    public var foundMs: Int64
    /// What each member said of it.
    public var why: String
    /// `repository@digest` of each blob that uses the chunk, as the metaserver answered; nil
    /// when the metaserver could not be asked.
    public var usedBy: [String]?

    /// Creates a record of a lost chunk.
    public init(group: UInt32, fileId: UInt64, foundMs: Int64, why: String, usedBy: [String]? = nil) {
        self.group = group
        self.fileId = fileId
        self.foundMs = foundMs
        self.why = why
        self.usedBy = usedBy
    }
}

/// The summary of one range of a member's file ids, to compare replicas without listing them
/// (`GET /v1/chunks/{group}/digests`): two members hold the same chunks in the range, with the
/// same CRCs, when (short of a 64-bit collision) their counts and hashes are equal.
public struct ChunkRangeDigest: Sendable, Codable, Equatable {
    /// The range's first file id, and the one after its last.
    public var from: UInt64
    public var to: UInt64
    /// Chunks in the range.
    public var count: UInt64
    /// The wrapping sum of ``chunkHash(fileId:crc:)`` over those chunks: independent of order,
    /// and cheap to keep.
    public var hash: UInt64

    /// Creates a range digest.
    public init(from: UInt64, to: UInt64, count: UInt64, hash: UInt64) {
        self.from = from
        self.to = to
        self.count = count
        self.hash = hash
    }

    /// One chunk's contribution to its range's hash: splitmix64 of the file id and CRC, so that
    /// a changed CRC or a different id changes the sum unpredictably.
    public static func chunkHash(fileId: UInt64, crc: UInt32) -> UInt64 {
        var z = fileId &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(crc)
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The answer of `GET /v1/chunks/{group}/digests`.
public struct ChunkRangeDigests: Sendable, Codable, Equatable {
    /// The group.
    public var group: UInt32
    /// The requested range cut into parts, in order.
    public var ranges: [ChunkRangeDigest]

    /// Creates the answer.
    public init(group: UInt32, ranges: [ChunkRangeDigest]) {
        self.group = group
        self.ranges = ranges
    }
}

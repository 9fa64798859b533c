import NIOCore
import SpeedyCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A chunkserver's local chunk storage: the one interface the HTTP layer, the tools and the
/// shared test suite (`ChunkStoreConformance` in the tests) use.
///
/// Every implementation keeps these promises:
/// - `put` returns only once the chunk is durable; after that it survives a crash or power loss.
/// - `get` never returns bytes that do not match the CRC-32C recorded at `put`.
/// - Each failure is one case of ``ChunkStoreError``.
public protocol ChunkStore: Sendable {
    /// Stores `data` under `key` and returns once it is durable.
    ///
    /// - Parameters:
    ///   - crc: the CRC-32C the sender computed; when given and different from the data's own,
    ///     nothing is stored and ``ChunkStoreError/checksumMismatch(expected:actual:)`` is thrown.
    ///   - dataCRC: the data's own CRC-32C when this process already computed it over `data` (as the
    ///     bytes arrived, while they were in the CPU's cache); nil has the store compute it.
    /// - Returns: the stored chunk's length and CRC.
    /// - Throws: `.tooLarge` over the size limit; `.alreadyExists` when different bytes are stored
    ///   under `key` (storing the same bytes again succeeds, so retries are safe); `.readOnly` when
    ///   free space is under the reserve or the store is failing; `.io` on a disk error.
    func put(_ key: ChunkKey, data: ByteBuffer, crc: UInt32?, dataCRC: UInt32?) async throws(ChunkStoreError) -> ChunkInfo

    /// Reads a whole chunk after checking its CRC.
    ///
    /// - Throws: `.notFound`; `.corrupt` when the stored bytes fail their CRC (counted in
    ///   ``StorageUsage/crcErrors``); `.io` on a disk error.
    func get(_ key: ChunkKey) async throws(ChunkStoreError) -> ByteBuffer

    /// The length and CRC of a stored chunk, without reading it; nil if absent.
    func info(_ key: ChunkKey) -> ChunkInfo?

    /// Where a stored chunk's bytes lie in a file, so they can be sent without being read into
    /// memory (`sendfile`). Nothing is read or checked: this is for a reader that checks the CRC
    /// itself before a byte goes further (the imageserver), and that reports a mismatch. The bytes
    /// are in the page cache when it returns, so sending them does not wait for the disk. Nil when
    /// the chunk is absent, the store is closed, reading it in failed (a checked ``get(_:)``
    /// finds and reports the error), or the store keeps no files (``MemoryChunkStore``).
    func extent(_ key: ChunkKey) async -> ChunkExtent?

    /// Deletes a chunk durably.
    ///
    /// - Throws: `.notFound` when there is no such chunk; `.io` on a disk error.
    func delete(_ key: ChunkKey) async throws(ChunkStoreError)

    /// Up to `limit` chunks of `group` with file ids greater than `after`, ascending.
    func list(group: UInt32, after: UInt64, limit: Int) -> [ChunkInfo]

    /// The count and hash of `group`'s chunks in each of `parts` near-equal contiguous ranges that
    /// cut [`from`, `to`), in order: how replicas compare what they hold without listing it
    /// (`GET /v1/chunks/{group}/digests`).
    ///
    /// The ranges cover [`from`, `to`) exactly, the first ones one id wider when the span does not
    /// divide evenly; there are `min(parts, to - from)` of them, so none is empty, and none at all
    /// when `from >= to` or `parts < 1`. Every implementation cuts a range the same way, so two
    /// stores' answers line up part by part. A range's `hash` is the wrapping sum of
    /// ``SpeedyCore/ChunkRangeDigest/chunkHash(fileId:crc:)`` over its chunks. A chunk stored or
    /// deleted during the call may or may not be counted. Writes wait behind it for at most one
    /// pass over the index, not for the whole computation.
    func digests(group: UInt32, from: UInt64, to: UInt64, parts: Int) -> [ChunkRangeDigest]

    /// How long ago the chunk was stored, in milliseconds; nil if absent. Never more than the
    /// truth (a store that cannot tell says less), and measured so that the wall clock stepping
    /// forward cannot age a chunk: garbage collection deletes unreferenced chunks by this age.
    func ageMs(_ key: ChunkKey) -> Int64?

    /// Space, counts and error counters right now.
    func usage() -> StorageUsage

    /// Flushes whatever makes the next open fast (the index checkpoint) and releases files.
    /// Calls after `close` fail with `.closed`.
    func close() async
}

/// Where a stored chunk's payload lies in a file (``ChunkStore/extent(_:)``).
public struct ChunkExtent: Sendable {
    /// Returns a new descriptor of the file, which the caller closes; below 0 on failure or once
    /// the store has let the file go (compacted). A descriptor stays valid when the file is
    /// unlinked afterwards, so the bytes stay readable through it.
    public let open: @Sendable () -> Int32
    /// Where the payload starts in the file.
    public let offset: Int
    /// The payload's length.
    public let length: Int
    /// The CRC-32C recorded when the chunk was stored.
    public let crc: UInt32

    /// Describes `length` bytes at `offset` of the file `open` opens.
    public init(open: @escaping @Sendable () -> Int32, offset: Int, length: Int, crc: UInt32) {
        self.open = open
        self.offset = offset
        self.length = length
        self.crc = crc
    }
}

/// Why a chunk store operation failed. One case per failure, so callers map each to a response.
public enum ChunkStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No chunk under the key.
    case notFound(ChunkKey)
    /// Different bytes are already stored under the key.
    case alreadyExists(ChunkKey, stored: ChunkInfo)
    /// The chunk is larger than the store accepts.
    case tooLarge(length: Int, limit: Int)
    /// The CRC the caller sent does not match the data it sent.
    case checksumMismatch(expected: UInt32, actual: UInt32)
    /// The stored bytes fail their CRC: this replica of the chunk is damaged.
    case corrupt(ChunkKey, expected: UInt32, actual: UInt32)
    /// The store takes no writes: free space under the reserve, or a disk error was seen.
    case readOnly(reason: String)
    /// A system call failed.
    case io(operation: String, errno: Int32)
    /// The store was closed.
    case closed

    public var description: String {
        switch self {
        case .notFound(let key): "chunk \(key) not found"
        case .alreadyExists(let key, let stored):
            "chunk \(key) already stored with different content (length \(stored.length), crc \(CRCFormat.hex(stored.crc)))"
        case .tooLarge(let length, let limit): "chunk of \(length) bytes is over the \(limit)-byte limit"
        case .checksumMismatch(let expected, let actual):
            "body CRC-32C is \(CRCFormat.hex(actual)) but the request said \(CRCFormat.hex(expected))"
        case .corrupt(let key, let expected, let actual):
            "chunk \(key) is corrupt on this server: stored CRC-32C \(CRCFormat.hex(expected)), data has \(CRCFormat.hex(actual))"
        case .readOnly(let reason): "store is read-only: \(reason)"
        case .io(let operation, let errno): "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))"
        case .closed: "store is closed"
        }
    }
}

/// A chunk store's space and counters at one instant; the chunkserver's heartbeat carries them.
public struct StorageUsage: Sendable, Equatable {
    /// Usable capacity in bytes.
    public var totalBytes: UInt64
    /// Bytes taken, of `totalBytes`.
    public var usedBytes: UInt64
    /// Bytes still available for new chunks.
    public var freeBytes: UInt64
    /// Live chunks.
    public var chunkCount: UInt64
    /// Bytes of live chunk payloads.
    public var chunkBytes: UInt64
    /// Whether the store takes writes right now, and if not, why.
    public var health: StoreHealth
    /// Reads that found a CRC mismatch.
    public var crcErrors: UInt64
    /// Failed system calls.
    public var ioErrors: UInt64
    /// Writes waiting for their fsync.
    public var pendingWrites: UInt64
    /// fsync calls made; fewer than writes when concurrent writes share one (group commit).
    public var syncCount: UInt64

    /// Creates a usage report.
    public init(
        totalBytes: UInt64, usedBytes: UInt64, freeBytes: UInt64, chunkCount: UInt64, chunkBytes: UInt64,
        health: StoreHealth, crcErrors: UInt64, ioErrors: UInt64, pendingWrites: UInt64, syncCount: UInt64
    ) {
        self.totalBytes = totalBytes
        self.usedBytes = usedBytes
        self.freeBytes = freeBytes
        self.chunkCount = chunkCount
        self.chunkBytes = chunkBytes
        self.health = health
        self.crcErrors = crcErrors
        self.ioErrors = ioErrors
        self.pendingWrites = pendingWrites
        self.syncCount = syncCount
    }
}

/// Whether a store takes writes.
public enum StoreHealth: Sendable, Equatable {
    /// Takes reads and writes.
    case writable
    /// Free space is under the reserve: reads only.
    case full
    /// A disk write or fsync failed: reads only, until an operator looks.
    case failing
}

extension ChunkStore {
    /// Stores `data` under `key`, the store computing its CRC (``put(_:data:crc:dataCRC:)``).
    public func put(_ key: ChunkKey, data: ByteBuffer, crc: UInt32?) async throws(ChunkStoreError) -> ChunkInfo {
        try await put(key, data: data, crc: crc, dataCRC: nil)
    }
}

import HTTPTypes
import HummingbirdCore
import NIOCore
import ServerSupport
import SpeedyCore

/// Cuts a streamed request body into chunks and writes them while it reads on: the body is never
/// held whole, SHA-256 sees every byte once, and at most `inFlight` chunk writes run per upload.
/// It only writes: what the chunks become (a blob, or garbage to drop) is ``BlobWriter``'s call.
struct ChunkedUpload: Sendable {
    let io: ChunkIO
    let budget: MemoryBudget
    let chunkSize: Int
    let inFlight: Int
    /// Whose budget share the buffers count against.
    let client: String

    /// What a body became.
    struct Outcome {
        var chunks: [ChunkRef]
        var bytes: UInt64
        var hasher: SHA256Hasher
    }

    /// Reads `body` to its end: ``ChunkCutter`` cuts it into chunk buffers, ``ChunkWrites`` writes
    /// them. Each chunk is handed to `durable` the moment it is on every member, so its owner
    /// (``BlobWriter``) knows it before anything can fail; on failure the writes still running
    /// are cancelled and waited out, so every chunk written has been handed over when this
    /// throws. `holder` holds the chunks written so far in the metadata while the body streams on.
    func consume<Body: AsyncSequence>(
        _ body: Body, hasher start: SHA256Hasher, holder: ChunkHolder? = nil, durable: @escaping ChunkWrites.Durable
    ) async throws -> Outcome where Body.Element == ByteBuffer {
        var hasher = start
        var total: UInt64 = 0
        var cutter = ChunkCutter(budget: budget, chunkSize: chunkSize, client: client)
        var writes = ChunkWrites(io: io, budget: budget, client: client, limit: inFlight, durable: durable)
        return try await withThrowingTaskGroup(of: (Int, ChunkRef).self) { group in
            do {
                for try await piece in body {
                    try await holder?.holdIfDue()
                    var piece = piece
                    hasher.update(piece)
                    total += UInt64(piece.readableBytes)
                    while let full = try await cutter.cut(&piece) { try await writes.submit(full, in: &group) }
                }
                if let last = cutter.finish() { try await writes.submit(last, in: &group) }
                return Outcome(chunks: try await writes.collect(from: &group), bytes: total, hasher: hasher)
            } catch {
                cutter.abandon()
                await writes.abandon(&group)
                throw error
            }
        }
    }
}

/// Cuts a body's pieces into chunk buffers, taking each buffer's bytes from the memory budget as
/// they arrive: a first slice with the chunk's first byte, the rest of the chunk once the slice is
/// full. A client that sends one byte and stalls holds a slice, not a chunk.
struct ChunkCutter {
    /// A chunk's bytes and the budget they hold until they are written.
    struct Cut {
        var data: ByteBuffer
        var reserved: Int
        /// The CRC-32C of `data`, computed as each piece was copied in (still in the CPU's cache).
        var crc: UInt32
    }

    /// Budget taken with a chunk's first byte.
    static let firstSlice = 256 << 10

    let budget: MemoryBudget
    let chunkSize: Int
    /// Whose budget share the buffers count against.
    let client: String
    /// The chunk being filled, and the budget it holds.
    private var buffer: ByteBuffer?
    private var reserved = 0
    private var crc = CRC32C()

    init(budget: MemoryBudget, chunkSize: Int, client: String) {
        self.budget = budget
        self.chunkSize = chunkSize
        self.client = client
    }

    /// Moves bytes of `piece` into the chunk being filled. Returns the chunk once it is full (what
    /// is left of `piece` waits for the next call), nil when `piece` is used up first.
    mutating func cut(_ piece: inout ByteBuffer) async throws(BudgetExhausted) -> Cut? {
        while piece.readableBytes > 0 {
            if buffer == nil { try await startChunk() }
            let take = min(piece.readableBytes, chunkSize - buffer!.readableBytes)
            if buffer!.readableBytes + take > reserved { try await growToChunk() }
            let slice = piece.readSlice(length: take)!
            // One pass over the piece while it is in the cache, beside the caller's SHA-256.
            crc.update(slice)
            buffer!.writeImmutableBuffer(slice)
            if buffer!.readableBytes == chunkSize { return takeChunk() }
        }
        return nil
    }

    /// The last, shorter chunk once the body has ended, if it left one.
    mutating func finish() -> Cut? {
        guard let last = buffer else { return nil }
        guard last.readableBytes > 0 else {
            abandon()
            return nil
        }
        return takeChunk()
    }

    /// Gives back the budget of the chunk being filled: the body failed, nothing will write it.
    mutating func abandon() {
        guard buffer != nil else { return }
        budget.release(reserved, client: client)
        buffer = nil
        reserved = 0
        crc = CRC32C()
    }

    private mutating func startChunk() async throws(BudgetExhausted) {
        let slice = min(Self.firstSlice, chunkSize)
        try await budget.acquire(slice, client: client)
        reserved = slice
        // Only the first slice is allocated now: a pooled block of a whole chunk is resident at
        // once, and a stalled client must hold no more memory than its budget says.
        buffer = ChunkBufferPool.allocator.buffer(capacity: slice)
    }

    private mutating func growToChunk() async throws(BudgetExhausted) {
        try await budget.acquire(chunkSize - reserved, client: client)
        reserved = chunkSize
        buffer!.reserveCapacity(chunkSize)
    }

    /// Hands the chunk and its budget over; the next byte starts a new one.
    private mutating func takeChunk() -> Cut {
        defer {
            buffer = nil
            reserved = 0
            crc = CRC32C()
        }
        return Cut(data: buffer!, reserved: reserved, crc: crc.value)
    }
}

/// The chunk writes of one body, run in the task group of ``ChunkedUpload/consume``: at most
/// `limit` at once (a fast client must not hold more chunks in memory than that), each chunk's
/// budget given back when its write ends, and the refs collected in body order.
struct ChunkWrites {
    /// Told of each chunk once it is durable, with its place in the body (0 for the first) and
    /// when its write began.
    typealias Durable = @Sendable (ChunkRef, _ index: Int, ContinuousClock.Instant) async -> Void
    typealias Group = ThrowingTaskGroup<(Int, ChunkRef), any Error>

    let io: ChunkIO
    let budget: MemoryBudget
    let client: String
    let limit: Int
    let durable: Durable
    private var refs: [Int: ChunkRef] = [:]
    private var submitted = 0
    private var running = 0

    init(io: ChunkIO, budget: MemoryBudget, client: String, limit: Int, durable: @escaping Durable) {
        self.io = io
        self.budget = budget
        self.client = client
        self.limit = limit
        self.durable = durable
    }

    /// Starts writing `chunk`, first waiting for a running write to end when `limit` run.
    mutating func submit(_ chunk: ChunkCutter.Cut, in group: inout Group) async throws {
        if running >= limit {
            do {
                if let (index, ref) = try await group.next() {
                    refs[index] = ref
                    running -= 1
                }
            } catch {
                // This chunk never reached a task that would give its bytes back.
                budget.release(chunk.reserved, client: client)
                throw error
            }
        }
        let index = submitted
        submitted += 1
        running += 1
        let (io, budget, client, durable) = (self.io, self.budget, self.client, self.durable)
        group.addTask {
            defer { budget.release(chunk.reserved, client: client) }
            let started = ContinuousClock.now
            let ref = try await io.write(chunk.data, crc: chunk.crc)
            // Handed over as soon as it is durable, not when the loop next collects it: a slow
            // body would otherwise leave it unheld past the deadline, a failing one lose it.
            await durable(ref, index, started)
            return (index, ref)
        }
    }

    /// Waits for every write; their refs in body order.
    mutating func collect(from group: inout Group) async throws -> [ChunkRef] {
        while let (index, ref) = try await group.next() { refs[index] = ref }
        return (0..<submitted).map { refs[$0]! }
    }

    /// After a failure: cancels the writes still running and waits them out, so that each chunk
    /// that did become durable has been handed to `durable` (whose owner drops it).
    func abandon(_ group: inout Group) async {
        group.cancelAll()
        while true {
            do {
                guard try await group.next() != nil else { break }
            } catch {
                continue
            }
        }
    }
}

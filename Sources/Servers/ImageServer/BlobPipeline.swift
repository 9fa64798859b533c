import HTTPTypes
import HummingbirdCore
import NIOCore
import ServerSupport
import SpeedyCore

/// Cuts a streamed request body into chunks and writes them while it reads on: the body is never
/// held whole, SHA-256 sees every byte once, and at most `inFlight` chunk writes run per upload.
///
/// A chunk buffer takes its bytes from the budget as they arrive: a first slice with the first
/// byte, the rest of the chunk once the slice is full. A client that sends one byte and stalls
/// holds a slice, not a chunk, until the idle watchdog drops it.
struct ChunkedUpload: Sendable {
    let io: ChunkIO
    let budget: MemoryBudget
    let chunkSize: Int
    let inFlight: Int
    /// Whose budget share the buffers count against.
    let client: String

    /// Budget taken with a chunk's first byte.
    static let firstSlice = 256 << 10

    /// What a body became.
    struct Outcome {
        var chunks: [ChunkRef]
        var bytes: UInt64
        var hasher: SHA256Hasher
    }

    /// Reads `body` to its end. On any failure the chunks already written are discarded and the
    /// error is rethrown, so nothing half-written is ever referenced. `holder` keeps the chunks
    /// written so far referenced while the body streams on.
    func consume<Body: AsyncSequence>(_ body: Body, hasher start: SHA256Hasher, holder: ChunkHolder? = nil) async throws -> Outcome
    where Body.Element == ByteBuffer {
        var hasher = start
        var total: UInt64 = 0
        let chunkSize = self.chunkSize
        let firstSlice = min(Self.firstSlice, chunkSize)
        let budget = self.budget
        let client = self.client
        let io = self.io
        return try await withThrowingTaskGroup(of: (Int, ChunkRef).self) { group in
            var written: [Int: ChunkRef] = [:]
            var next = 0
            var running = 0
            var buffer: ByteBuffer?

            func submit(_ data: ByteBuffer, reserved: Int) async throws {
                if running >= inFlight {
                    do {
                        if let (i, ref) = try await group.next() {
                            written[i] = ref
                            running -= 1
                        }
                    } catch {
                        // This chunk never reached a task that would give its bytes back.
                        budget.release(reserved, client: client)
                        throw error
                    }
                }
                let index = next
                next += 1
                running += 1
                group.addTask {
                    defer { budget.release(reserved, client: client) }
                    let started = ContinuousClock.now
                    let ref = try await io.write(data)
                    // Noted as soon as it is durable, not when the loop next collects it: a
                    // slow body would otherwise leave it unheld past the deadline.
                    await holder?.written(ref, started: started)
                    return (index, ref)
                }
            }

            var reserved = 0
            do {
                for try await piece in body {
                    try await holder?.holdIfDue()
                    var piece = piece
                    hasher.update(piece)
                    total += UInt64(piece.readableBytes)
                    while piece.readableBytes > 0 {
                        if buffer == nil {
                            try await budget.acquire(firstSlice, client: client)
                            reserved = firstSlice
                            // Only the first slice is allocated now: a pooled block of a whole
                            // chunk is resident at once, and a stalled client must hold no more
                            // memory than its budget says.
                            buffer = ChunkBufferPool.allocator.buffer(capacity: firstSlice)
                        }
                        let take = min(piece.readableBytes, chunkSize - buffer!.readableBytes)
                        if buffer!.readableBytes + take > reserved {
                            try await budget.acquire(chunkSize - reserved, client: client)
                            reserved = chunkSize
                            buffer!.reserveCapacity(chunkSize)
                        }
                        buffer!.writeImmutableBuffer(piece.readSlice(length: take)!)
                        if buffer!.readableBytes == chunkSize {
                            let full = buffer!
                            buffer = nil
                            try await submit(full, reserved: reserved)
                        }
                    }
                }
                if let last = buffer {
                    buffer = nil
                    if last.readableBytes > 0 {
                        try await submit(last, reserved: reserved)
                    } else {
                        budget.release(reserved, client: client)
                    }
                }
                while let (i, ref) = try await group.next() { written[i] = ref }
            } catch {
                if buffer != nil { budget.release(reserved, client: client) }
                group.cancelAll()
                while true {
                    do {
                        guard let (i, ref) = try await group.next() else { break }
                        written[i] = ref
                    } catch {
                        continue
                    }
                }
                io.discard(Array(written.values))
                throw error
            }
            return Outcome(chunks: (0..<next).map { written[$0]! }, bytes: total, hasher: hasher)
        }
    }
}

/// Streams a blob (or a byte range of it) chunk by chunk, fetching the next chunk while the
/// current one is sent. Bytes that fail their CRC are never sent: another replica is read, and
/// when none is good the response is cut short (so the client sees a failed transfer, not bad data).
struct BlobStream: Sendable {
    let io: ChunkIO
    let budget: MemoryBudget
    /// Whose budget share the fetched chunks count against.
    let client: String

    /// The part of one chunk a response needs.
    struct Piece: Sendable {
        var ref: ChunkRef
        var start: Int
        var length: Int
    }

    /// The pieces covering bytes `range` of a blob made of `chunks`.
    static func pieces(of chunks: [ChunkRef], range: ClosedRange<UInt64>) -> [Piece] {
        var pieces: [Piece] = []
        var offset: UInt64 = 0
        for ref in chunks {
            let end = offset + UInt64(ref.length)
            defer { offset = end }
            guard end > range.lowerBound, offset <= range.upperBound else { continue }
            let start = max(range.lowerBound, offset) - offset
            let stop = min(range.upperBound + 1, end) - offset
            pieces.append(Piece(ref: ref, start: Int(start), length: Int(stop - start)))
        }
        return pieces
    }

    /// A chunk in hand, with the budget its bytes hold.
    struct Fetched: Sendable {
        var data: ByteBuffer
        var held: BudgetReservation
    }

    /// Reads the chunk `piece` lies in, holding its bytes in the budget.
    /// - Throws: ``BudgetExhausted`` when no buffer comes free in time, ``ChunkIOError`` when no
    ///   member returns a good copy.
    func fetch(_ piece: Piece) async throws -> Fetched {
        let held = try await budget.reserve(Int(piece.ref.length), client: client)
        do {
            return Fetched(data: try await io.read(piece.ref), held: held)
        } catch {
            held.release()
            throw error
        }
    }

    /// Sends `pieces`, the first of which the handler already read (`first`) before it answered:
    /// a `200` goes out only once the first bytes are in hand, so a blob no member can serve gets
    /// a `503` the client can retry rather than a broken body. A later chunk that no member can
    /// serve throws, which ends the connection short of its `Content-Length`: the client sees a
    /// truncated transfer, never a clean end.
    func write(_ pieces: [Piece], first: Fetched?, to writer: inout any ResponseBodyWriter) async throws {
        let stream = self
        func fetch(_ piece: Piece) -> Task<Fetched, any Error> {
            Task { try await stream.fetch(piece) }
        }
        var pending: Task<Fetched, any Error>? =
            if let first { Task { first } } else { pieces.first.map(fetch) }
        var index = 0
        // Whatever is fetched but not sent goes back to the budget, however this ends.
        defer {
            if let pending {
                pending.cancel()
                Task { (try? await pending.value)?.held.release() }
            }
        }
        while let current = pending {
            let piece = pieces[index]
            pending = nil
            let fetched = try await current.value
            defer { fetched.held.release() }
            if index + 1 < pieces.count { pending = fetch(pieces[index + 1]) }
            index += 1
            let data = fetched.data
            try await writer.write(data.getSlice(at: data.readerIndex + piece.start, length: piece.length)!)
        }
        try await writer.finish(nil)
    }
}

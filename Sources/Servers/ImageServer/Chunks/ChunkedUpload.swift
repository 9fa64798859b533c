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

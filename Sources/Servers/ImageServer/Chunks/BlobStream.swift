import HTTPTypes
import HummingbirdCore
import NIOCore
import ServerSupport
import SpeedyCore
import Synchronization

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

    /// The first chunk, read before the answer, handed to the body's writer once. The body's
    /// closure lives as long as the response: holding the chunk itself would keep its buffer for
    /// the whole blob, outside the budget once the chunk is written (a chunk per stream: 4 MiB
    /// each of 100 slow pulls).
    final class FirstChunk: Sendable {
        private let fetched: Mutex<Fetched?>

        init(_ fetched: Fetched?) {
            self.fetched = Mutex(fetched)
        }

        /// The chunk, the first time; nil after.
        func take() -> Fetched? {
            fetched.withLock { value in
                defer { value = nil }
                return value
            }
        }
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
    func write(_ pieces: [Piece], first: FirstChunk, to writer: inout any ResponseBodyWriter) async throws {
        let stream = self
        func fetch(_ piece: Piece) -> Task<Fetched, any Error> {
            Task { try await stream.fetch(piece) }
        }
        // Taken inside the task, so that nothing here holds the first chunk once it is sent.
        var pending: Task<Fetched, any Error>? = pieces.first.map { piece in
            Task { if let fetched = first.take() { fetched } else { try await stream.fetch(piece) } }
        }
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

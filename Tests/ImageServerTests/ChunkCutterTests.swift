import NIOCore
import SpeedyCore
import Testing
import SpeedyTestSupport

@testable import ImageServer

/// The chunker of an upload (``ChunkCutter``): chunks of exactly the chunk size in body order,
/// each with the CRC-32C of its bytes, and budget taken a slice at a time and given back exactly once.
@Suite("Chunk cutter")
struct ChunkCutterTests {
    static let chunk = 1 << 20
    static let slice = ChunkCutter.firstSlice

    func bytes(_ count: Int) -> [UInt8] { TestBytes.random(count, seed: 7) }

    /// Pieces that straddle chunk boundaries become whole chunks and one shorter last chunk, with
    /// every byte in order; each chunk holds a whole chunk's budget until its writer gives it back.
    @Test func piecesBecomeWholeChunksInOrder() async throws {
        let budget = MemoryBudget(bytes: 16 << 20, perClient: 16 << 20)
        var cutter = ChunkCutter(budget: budget, chunkSize: Self.chunk, client: "c")
        let body = bytes(2 * Self.chunk + 300_000)
        var cuts: [ChunkCutter.Cut] = []
        for start in stride(from: 0, to: body.count, by: 300_001) {
            var piece = ByteBuffer(bytes: body[start..<min(start + 300_001, body.count)])
            while let cut = try await cutter.cut(&piece) { cuts.append(cut) }
            #expect(piece.readableBytes == 0)
        }
        if let last = cutter.finish() { cuts.append(last) }
        #expect(cuts.map(\.data.readableBytes) == [Self.chunk, Self.chunk, 300_000])
        #expect(cuts.map(\.reserved) == [Self.chunk, Self.chunk, Self.chunk])
        #expect(cuts.flatMap { Array($0.data.readableBytesView) } == body)
        // Each chunk's CRC, computed piece by piece as it was cut, is the CRC of its bytes.
        #expect(cuts.map(\.crc) == cuts.map { CRC32C.checksum($0.data) })
        #expect(budget.available == 16 << 20 - 3 * Self.chunk)
        for cut in cuts { budget.release(cut.reserved, client: "c") }
        #expect(budget.available == 16 << 20)
    }

    /// A client that sends a byte and stalls holds one slice, not a chunk; a body that fails gives
    /// the slice back, and a body that ends exactly on a chunk boundary leaves no empty chunk.
    @Test func aStalledChunkHoldsOneSliceUntilAbandoned() async throws {
        let budget = MemoryBudget(bytes: 16 << 20, perClient: 16 << 20)
        var cutter = ChunkCutter(budget: budget, chunkSize: Self.chunk, client: "c")
        var one = ByteBuffer(bytes: [1])
        let none = try await cutter.cut(&one)
        #expect(none == nil)
        #expect(budget.available == 16 << 20 - Self.slice)
        cutter.abandon()
        cutter.abandon()
        #expect(budget.available == 16 << 20)

        var exact = ByteBuffer(bytes: bytes(Self.chunk))
        let full = try #require(try await cutter.cut(&exact))
        let after = try await cutter.cut(&exact)
        #expect(after == nil)
        let last = cutter.finish()
        #expect(last == nil)
        budget.release(full.reserved, client: "c")
        #expect(budget.available == 16 << 20)
    }

    /// Chunks smaller than the first slice take only their own size.
    @Test func smallChunksTakeOnlyTheirSize() async throws {
        let budget = MemoryBudget(bytes: 1 << 20, perClient: 1 << 20)
        var cutter = ChunkCutter(budget: budget, chunkSize: 1000, client: "c")
        var piece = ByteBuffer(bytes: bytes(2500))
        var cuts: [ChunkCutter.Cut] = []
        while let cut = try await cutter.cut(&piece) { cuts.append(cut) }
        if let last = cutter.finish() { cuts.append(last) }
        #expect(cuts.map(\.data.readableBytes) == [1000, 1000, 500])
        #expect(cuts.map(\.reserved) == [1000, 1000, 1000])
    }
}

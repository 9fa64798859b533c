import ChunkStorage
import NIOCore
import SpeedyCore
import Testing
#if canImport(Glibc)
import Glibc
#endif
import SpeedyTestSupport

/// The contract of ``ChunkStore``, checked against every implementation (as distribution's
/// storage driver suite runs against every driver).
@Suite("ChunkStore conformance")
struct ChunkStoreConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case volume, memory
        var testDescription: String { rawValue }
    }

    /// Runs `body` against a new store of `kind`, then closes and cleans up.
    func withStore(_ kind: Kind, _ body: (any ChunkStore) async throws -> Void) async throws {
        switch kind {
        case .memory:
            let store = MemoryChunkStore(maxChunkBytes: 1 << 20)
            try await body(store)
            await store.close()
        case .volume:
            let dir = try TemporaryDirectory()
            defer { dir.remove() }
            let store = try VolumeChunkStore(
                configuration: .init(directory: dir.path, volumeSize: 8 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0))
            try await body(store)
            await store.close()
        }
    }

    /// The data's CRC computed by the caller as the bytes arrived stands for the store's own
    /// pass: it is what the chunk is stored and checked under, and a sender's CRC that differs
    /// from it stores nothing.
    @Test(arguments: Kind.allCases)
    func theDataCRCTheCallerComputedIsTheChunksCRC(kind: Kind) async throws {
        try await withStore(kind) { store in
            let data = payload(70_000, seed: 5)
            let key = ChunkKey(group: 1, fileId: 9)
            let own = CRC32C.checksum(data)
            await #expect(throws: ChunkStoreError.checksumMismatch(expected: own &+ 1, actual: own)) {
                try await store.put(key, data: data, crc: own &+ 1, dataCRC: own)
            }
            #expect(store.info(key) == nil)
            let info = try await store.put(key, data: data, crc: own, dataCRC: own)
            #expect(info.crc == own && store.info(key)?.crc == own)
            #expect(try await store.get(key) == data)
        }
    }

    @Test(arguments: Kind.allCases)
    func ageCountsFromThePutAndGoesWithTheChunk(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 8)
            #expect(store.ageMs(key) == nil)
            let before = ContinuousClock.now
            _ = try await store.put(key, data: payload(1000, seed: 2), crc: nil)
            try await Task.sleep(for: .milliseconds(60))
            // An identical retry is the same chunk: its age goes on.
            _ = try await store.put(key, data: payload(1000, seed: 2), crc: nil)
            let age = try #require(store.ageMs(key))
            let elapsed = Int64((ContinuousClock.now - before) / .milliseconds(1))
            #expect(age >= 55 && age <= elapsed + 1, "age \(age) after \(elapsed) ms")
            try await store.delete(key)
            #expect(store.ageMs(key) == nil)
        }
    }

    /// An extent, where a store has one, holds exactly the bytes `get` returns, stays readable
    /// through its own descriptor, and is gone with the chunk.
    @Test(arguments: Kind.allCases)
    func anExtentHoldsTheChunksBytes(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 9)
            #expect(await store.extent(key) == nil)
            let data = payload(300_001, seed: 4)
            let info = try await store.put(key, data: data, crc: nil)
            guard let extent = await store.extent(key) else {
                #expect(kind == .memory, "a store with files gives an extent")
                return
            }
            #expect(extent.length == data.readableBytes && extent.crc == info.crc)
            let fd = extent.open()
            #expect(fd >= 0)
            defer { close(fd) }
            var bytes = [UInt8](repeating: 0, count: extent.length)
            let read = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, extent.length, off_t(extent.offset)) }
            #expect(read == extent.length)
            #expect(ByteBuffer(bytes: bytes) == data)
            try await store.delete(key)
            #expect(await store.extent(key) == nil)
        }
    }

    @Test(arguments: Kind.allCases)
    func putThenGetReturnsTheSameBytes(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 7)
            let data = payload(100_000, seed: 1)
            let info = try await store.put(key, data: data, crc: CRC32C.checksum(data))
            #expect(info == ChunkInfo(fileId: 7, length: 100_000, crc: CRC32C.checksum(data)))
            #expect(try await store.get(key) == data)
            #expect(store.info(key) == info)
            #expect(store.usage().chunkCount == 1)
        }
    }

    @Test(arguments: Kind.allCases)
    func emptyChunkIsStored(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 1)
            _ = try await store.put(key, data: ByteBuffer(), crc: nil)
            #expect(try await store.get(key).readableBytes == 0)
        }
    }

    @Test(arguments: Kind.allCases)
    func missingChunkIsNotFound(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 99)
            await #expect(throws: ChunkStoreError.notFound(key)) { try await store.get(key) }
            await #expect(throws: ChunkStoreError.notFound(key)) { try await store.delete(key) }
            #expect(store.info(key) == nil)
        }
    }

    @Test(arguments: Kind.allCases)
    func identicalPutIsIdempotentAndDifferentPutConflicts(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 2, fileId: 5)
            let data = payload(4096, seed: 2)
            let first = try await store.put(key, data: data, crc: nil)
            #expect(try await store.put(key, data: data, crc: nil) == first)
            await #expect(throws: ChunkStoreError.alreadyExists(key, stored: first)) {
                try await store.put(key, data: payload(4096, seed: 3), crc: nil)
            }
            #expect(try await store.get(key) == data)
        }
    }

    @Test(arguments: Kind.allCases)
    func badInputStoresNothing(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 3)
            let data = payload(1000, seed: 4)
            let crc = CRC32C.checksum(data)
            await #expect(throws: ChunkStoreError.checksumMismatch(expected: crc ^ 1, actual: crc)) {
                try await store.put(key, data: data, crc: crc ^ 1)
            }
            await #expect(throws: ChunkStoreError.tooLarge(length: (1 << 20) + 1, limit: 1 << 20)) {
                try await store.put(key, data: payload((1 << 20) + 1, seed: 5), crc: nil)
            }
            #expect(store.info(key) == nil)
            #expect(store.usage().chunkCount == 0)
        }
    }

    @Test(arguments: Kind.allCases)
    func deleteRemovesAndAllowsReuse(kind: Kind) async throws {
        try await withStore(kind) { store in
            let key = ChunkKey(group: 1, fileId: 11)
            _ = try await store.put(key, data: payload(500, seed: 6), crc: nil)
            try await store.delete(key)
            await #expect(throws: ChunkStoreError.notFound(key)) { try await store.get(key) }
            let again = payload(700, seed: 7)
            _ = try await store.put(key, data: again, crc: nil)
            #expect(try await store.get(key) == again)
        }
    }

    @Test(arguments: Kind.allCases)
    func listPagesInFileIdOrderPerGroup(kind: Kind) async throws {
        try await withStore(kind) { store in
            for id in [9, 3, 7, 1, 5] as [UInt64] {
                _ = try await store.put(ChunkKey(group: 4, fileId: id), data: payload(10, seed: id), crc: nil)
            }
            _ = try await store.put(ChunkKey(group: 5, fileId: 2), data: payload(10, seed: 99), crc: nil)
            let first = store.list(group: 4, after: 0, limit: 2)
            #expect(first.map(\.fileId) == [1, 3])
            let rest = store.list(group: 4, after: 3, limit: 10)
            #expect(rest.map(\.fileId) == [5, 7, 9])
            #expect(rest.first?.crc == CRC32C.checksum(payload(10, seed: 5)))
            #expect(store.list(group: 5, after: 0, limit: 10).map(\.fileId) == [2])
            #expect(store.list(group: 6, after: 0, limit: 10).isEmpty)
        }
    }

    @Test(arguments: Kind.allCases)
    func digestsCutTheRangeEvenlyAndSumEachPartsChunks(kind: Kind) async throws {
        try await withStore(kind) { store in
            var crcs: [UInt64: UInt32] = [:]
            for id in [1, 2, 3, 10, 11, 25, 26, 99, 100] as [UInt64] {
                crcs[id] = try await store.put(ChunkKey(group: 4, fileId: id), data: payload(64, seed: id), crc: nil).crc
            }
            _ = try await store.put(ChunkKey(group: 5, fileId: 12), data: payload(64, seed: 12), crc: nil)
            try await store.delete(ChunkKey(group: 4, fileId: 3))
            crcs[3] = nil
            // [1, 101) in 3 parts: 100 ids, the first part one wider.
            let digests = store.digests(group: 4, from: 1, to: 101, parts: 3)
            #expect(digests.map { [$0.from, $0.to] } == [[1, 35], [35, 68], [68, 101]])
            for digest in digests {
                let held = crcs.filter { $0.key >= digest.from && $0.key < digest.to }
                #expect(digest.count == UInt64(held.count), "\(digest)")
                #expect(digest.hash == held.reduce(0) { $0 &+ ChunkRangeDigest.chunkHash(fileId: $1.key, crc: $1.value) }, "\(digest)")
            }
            #expect(digests.map(\.count) == [6, 0, 2])
            // A chunk stored after a digest (or a listing) is in the next one.
            #expect(store.list(group: 4, after: 0, limit: 100).count == 8)
            _ = try await store.put(ChunkKey(group: 4, fileId: 50), data: payload(64, seed: 50), crc: nil)
            #expect(store.digests(group: 4, from: 1, to: 101, parts: 3).map(\.count) == [6, 1, 2])
            // The whole id space, the ends of the range, a span narrower than the parts asked, nothing.
            #expect(store.digests(group: 4, from: 0, to: .max, parts: 16).reduce(0) { $0 + $1.count } == 9)
            #expect(store.digests(group: 4, from: 0, to: .max, parts: 16).last?.to == .max)
            #expect(store.digests(group: 4, from: 2, to: 100, parts: 1).map(\.count) == [7])
            #expect(store.digests(group: 4, from: 10, to: 12, parts: 16).map { [$0.from, $0.to, $0.count] } == [[10, 11, 1], [11, 12, 1]])
            #expect(store.digests(group: 4, from: 5, to: 5, parts: 4).isEmpty)
            #expect(store.digests(group: 6, from: 0, to: 1000, parts: 2).map(\.count) == [0, 0])
        }
    }

    @Test(arguments: Kind.allCases)
    func concurrentWritesAllLand(kind: Kind) async throws {
        try await withStore(kind) { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for id in 1...40 as ClosedRange<UInt64> {
                    group.addTask { _ = try await store.put(ChunkKey(group: 1, fileId: id), data: payload(20_000, seed: id), crc: nil) }
                }
                try await group.waitForAll()
            }
            for id in 1...40 as ClosedRange<UInt64> {
                #expect(try await store.get(ChunkKey(group: 1, fileId: id)) == payload(20_000, seed: id))
            }
        }
    }
}

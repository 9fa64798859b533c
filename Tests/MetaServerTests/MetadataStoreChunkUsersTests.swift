import Foundation
import SpeedyCore
import Testing

/// `chunkUsers(group:fileId:)` on every store: which blobs list a chunk, the repositories linking
/// each, whether an upload holds it, and the bounds on the answer.
extension MetadataStoreConformanceTests {
    /// A blob of `chunks`, each 10 bytes.
    func blob(_ seed: String, of chunks: [ChunkRef]) -> BlobRecord {
        BlobRecord(digest: digest(seed), size: UInt64(chunks.count * 10), chunks: chunks)
    }

    func chunk(_ fileId: UInt64, group: UInt32 = 7) -> ChunkRef { ChunkRef(group: group, fileId: fileId, length: 10, crc: UInt32(fileId)) }

    @Test(arguments: Kind.allCases)
    func aChunkTwoBlobsShareAnswersBothWithTheirRepositories(kind: Kind) async throws {
        try await withStore(kind) { store in
            let shared = chunk(5000)
            let first = blob("users-first", of: [chunk(5001), shared]), second = blob("users-second", of: [shared, chunk(5002)])
            _ = try await store.commitBlob(first, repository: "team/one")
            _ = try await store.commitBlob(second, repository: "team/two")
            _ = try await store.mountBlob(second.digest, into: "other/app", from: "team/two")
            let (low, high) = first.digest.description < second.digest.description ? (first, second) : (second, first)
            func repositories(of record: BlobRecord) -> [String] { record == first ? ["team/one"] : ["other/app", "team/two"] }
            let expected = ChunkUsers(
                blobs: [low, high].map { ChunkUsers.Blob(digest: $0.digest, repositories: repositories(of: $0)) }, truncated: false,
                heldByUpload: false)
            #expect(try await store.chunkUsers(group: 7, fileId: 5000) == expected)
            // A chunk only one blob lists; the same file id in another group is another chunk.
            #expect(try await store.chunkUsers(group: 7, fileId: 5001).blobs.map(\.digest) == [first.digest])
            #expect(try await store.chunkUsers(group: 8, fileId: 5001) == .unused)
            // Unlinked everywhere, a blob still lists the chunk until garbage collection.
            try await store.unlinkBlob(first.digest, from: "team/one")
            #expect(try await store.chunkUsers(group: 7, fileId: 5001).blobs == [ChunkUsers.Blob(digest: first.digest, repositories: [])])
        }
    }

    @Test(arguments: Kind.allCases)
    func anUnknownChunkHasNoUsersAndAnImpossibleFileIdIsInvalid(kind: Kind) async throws {
        try await withStore(kind) { store in
            _ = try await store.commitBlob(blob("users-other", of: [chunk(6000)]), repository: "team/app")
            #expect(try await store.chunkUsers(group: 7, fileId: 6001) == .unused)
            #expect(try await store.chunkUsers(group: 1, fileId: 0) == .unused)
            await #expect(throws: MetadataError.self) { try await store.chunkUsers(group: 7, fileId: UInt64(Int64.max) + 1) }
        }
    }

    @Test(arguments: Kind.allCases)
    func aChunkAnUploadHoldsOrHasAppendedIsHeldByUpload(kind: Kind) async throws {
        try await withStore(kind) { store in
            let session = try await store.createUpload(repository: "team/app", client: "test", limits: .unlimited)
            try await store.holdChunks([chunk(7000)], upload: session.id)
            #expect(try await store.chunkUsers(group: 7, fileId: 7000) == ChunkUsers(blobs: [], truncated: false, heldByUpload: true))
            // Appending moves it from the request's hold into the session: still the upload's.
            _ = try await store.appendUpload(session.id, expectedOffset: 0, chunks: [chunk(7000)], newOffset: 10, hashState: session.hashState)
            #expect(try await store.chunkUsers(group: 7, fileId: 7000).heldByUpload)
            #expect(try await store.chunkUsers(group: 7, fileId: 7001).heldByUpload == false)
            try await store.deleteUpload(session.id)
            #expect(try await store.chunkUsers(group: 7, fileId: 7000) == .unused)
        }
    }

    @Test(arguments: Kind.allCases)
    func aChunkManyBlobsShareAnswersABoundedList(kind: Kind) async throws {
        try await withStore(kind) { store in
            let shared = chunk(8000)
            var digests: [String] = []
            for n in 0...ChunkUsers.maxBlobs {
                let record = blob("users-many-\(n)", of: [shared])
                _ = try await store.commitBlob(record, repository: "team/app")
                digests.append(record.digest.description)
            }
            let popular = blob("users-popular", of: [chunk(8001)])
            _ = try await store.commitBlob(popular, repository: "repo/000")
            for n in 1...ChunkUsers.maxRepositories {
                _ = try await store.mountBlob(popular.digest, into: String(format: "repo/%03d", n), from: nil)
            }
            let many = try await store.chunkUsers(group: 7, fileId: 8000)
            #expect(many.truncated)
            #expect(many.blobs.map(\.digest.description) == Array(digests.sorted().prefix(ChunkUsers.maxBlobs)))
            let one = try await store.chunkUsers(group: 7, fileId: 8001)
            #expect(one.truncated == false)
            #expect(one.blobs.first?.repositoriesTruncated == true)
            #expect(one.blobs.first?.repositories == (0..<ChunkUsers.maxRepositories).map { String(format: "repo/%03d", $0) })
        }
    }
}

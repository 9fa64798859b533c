import Foundation
import SpeedyCore
import Testing

/// `moveChunk(of:from:to:)` and `groupUsage()` on every store: the conditional switch a drain or
/// rebalance makes, the moved chunk kept referenced until the sweep finds it past the grace, and
/// what each group holds (docs/gc.md, "Moving chunks").
extension MetadataStoreConformanceTests {
    /// `chunk` copied to `group` under `fileId`: same length and CRC.
    func copy(of chunk: ChunkRef, to group: UInt32 = 8, fileId: UInt64) -> ChunkRef {
        ChunkRef(group: group, fileId: fileId, length: chunk.length, crc: chunk.crc)
    }

    /// Keeps `blobs` from the sweep: a tagged manifest names them.
    func keep(_ blobs: [BlobRecord], in store: any MetadataStore) async throws {
        for record in blobs { _ = try await store.commitBlob(record, repository: "moves") }
        try await store.putManifest(manifest("keep-\(blobs.count)", in: "moves", blobs: blobs.map(\.digest)), tag: "keep-\(blobs.count)")
    }

    @Test(arguments: Kind.allCases)
    func aMoveSwitchesOnlyTheReferenceStillNamedAndSaysWhetherItDid(kind: Kind) async throws {
        try await withStore(kind) { store in
            let first = chunk(100), second = chunk(101)
            let record = blob("move-one", of: [first, second])
            _ = try await store.commitBlob(record, repository: "moves")
            let moved = copy(of: first, fileId: 900)
            #expect(try await store.moveChunk(of: record.digest, from: first, to: moved))
            #expect(try await store.blob(record.digest, in: "moves")?.chunks == [moved, second])
            // The same move again (its answer lost) says moved and changes nothing.
            #expect(try await store.moveChunk(of: record.digest, from: first, to: moved))
            // Another copy of a chunk the blob no longer names: nothing.
            #expect(try await store.moveChunk(of: record.digest, from: first, to: copy(of: first, fileId: 901)) == false)
            // Other bytes under the key (a stale CRC), or an unknown blob: nothing.
            let stale = ChunkRef(group: 7, fileId: 101, length: 10, crc: 999)
            #expect(try await store.moveChunk(of: record.digest, from: stale, to: copy(of: stale, fileId: 902)) == false)
            #expect(try await store.moveChunk(of: digest("move-none"), from: second, to: copy(of: second, fileId: 903)) == false)
            #expect(try await store.blob(record.digest, in: "moves")?.chunks == [moved, second])
            // A copy must hold the same bytes under another key.
            await #expect(throws: MetadataError.self) {
                try await store.moveChunk(of: record.digest, from: second, to: ChunkRef(group: 8, fileId: 904, length: 11, crc: second.crc))
            }
            await #expect(throws: MetadataError.self) { try await store.moveChunk(of: record.digest, from: second, to: second) }
        }
    }

    @Test(arguments: Kind.allCases)
    func aMovedChunkStaysReferencedUntilASweepFindsItPastTheGrace(kind: Kind) async throws {
        try await withStore(kind) { store in
            let old = chunk(200), other = chunk(201)
            let record = blob("move-kept", of: [old, other])
            try await keep([record], in: store)
            let moved = copy(of: old, fileId: 950)
            #expect(try await store.moveChunk(of: record.digest, from: old, to: moved))
            // Pulls that read the old list may still read it: it is referenced, as moved.
            let references = try await store.chunkReferences(group: 7, after: 0, limit: 100).references
            #expect(references.contains(ChunkReference(fileId: 200, length: 10, crc: old.crc, owner: "moved:\(record.digest)")))
            #expect(references.contains(ChunkReference(fileId: 201, length: 10, crc: other.crc, owner: record.digest.description)))
            #expect(try await store.chunkReferences(group: 8, after: 0, limit: 100).references.map(\.fileId) == [950])
            #expect(try await store.referencedGroups().contains(7))
            // Within the grace it stays; past it, it is queued for deletion and forgotten.
            #expect(try await store.sweep(graceMs: 60_000, limit: 100, dryRun: false).movedChunks == [])
            try await pause()
            #expect(try await store.sweep(graceMs: 0, limit: 100, dryRun: true).movedChunks == [old])
            #expect(try await store.sweep(graceMs: 0, limit: 100, dryRun: false) == MetadataSweep(manifests: [], blobs: [], movedChunks: [old]))
            #expect(try await store.chunkDeletions(limit: 100) == [old])
            #expect(try await store.chunkReferences(group: 7, after: 0, limit: 100).references.map(\.owner) == [record.digest.description])
            #expect(try await store.blob(record.digest, in: "moves")?.chunks == [moved, other])
        }
    }

    @Test(arguments: Kind.allCases)
    func aMovedChunkAnotherBlobStillNamesIsNotQueued(kind: Kind) async throws {
        try await withStore(kind) { store in
            let shared = chunk(300)
            let first = blob("move-shared-a", of: [shared]), second = blob("move-shared-b", of: [shared])
            try await keep([first, second], in: store)
            let moved = copy(of: shared, fileId: 960)
            #expect(try await store.moveChunk(of: first.digest, from: shared, to: moved))
            try await pause()
            #expect(try await store.sweep(graceMs: 0, limit: 100, dryRun: false).movedChunks == [])
            #expect(try await store.chunkDeletions(limit: 100) == [])
            // Once the other blob names the copy too, nothing names the original.
            #expect(try await store.moveChunk(of: second.digest, from: shared, to: moved))
            try await pause()
            #expect(try await store.sweep(graceMs: 0, limit: 100, dryRun: false).movedChunks == [shared])
        }
    }

    @Test(arguments: Kind.allCases)
    func groupUsageCountsWhatBlobsKeepInEachGroup(kind: Kind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.groupUsage() == [])
            _ = try await store.commitBlob(blob("usage-a", of: [chunk(400), chunk(401), chunk(402, group: 9)]), repository: "moves")
            let session = try await store.createUpload(repository: "moves", client: "test", limits: .unlimited)
            try await store.holdChunks([chunk(403, group: 9)], upload: session.id)
            #expect(try await store.groupUsage() == [GroupUsage(group: 7, chunks: 2, bytes: 20), GroupUsage(group: 9, chunks: 1, bytes: 10)])
            #expect(try await store.moveChunk(of: digest("usage-a"), from: chunk(400), to: copy(of: chunk(400), to: 9, fileId: 970)))
            #expect(try await store.groupUsage() == [GroupUsage(group: 7, chunks: 1, bytes: 10), GroupUsage(group: 9, chunks: 2, bytes: 20)])
        }
    }
}

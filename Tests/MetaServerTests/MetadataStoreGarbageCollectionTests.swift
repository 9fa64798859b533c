import Foundation
import SpeedyCore
import Testing

/// The garbage collection part of the ``MetadataStore`` contract (docs/gc.md), on both stores.
extension MetadataStoreConformanceTests {
    /// A manifest record that refers to `blobs` and `manifests`, with content that names them too.
    func manifest(
        _ seed: String, in repository: String, blobs: [Digest] = [], manifests: [Digest] = [], subject: Digest? = nil
    ) -> ManifestRecord {
        let content = Array("{\"seed\":\"\(seed)\",\"config\":{\"digest\":\"\(blobs.first?.description ?? "")\"}}".utf8)
        return ManifestRecord(
            repository: repository, digest: Digest.of(content), mediaType: "application/vnd.oci.image.manifest.v1+json",
            content: content, subject: subject, references: ManifestReferences(blobs: blobs, manifests: manifests))
    }

    func pause() async throws { try await Task.sleep(for: .milliseconds(30)) }

    @Test(arguments: Kind.allCases)
    func sweepTakesUntaggedManifestsAndUnreferencedBlobsButNothingReachable(kind: Kind) async throws {
        try await withStore(kind) { store in
            let shared = blob("shared"), onlyOld = blob("old-only-x", chunks: 3), onlyNew = blob("new"), loose = blob("loose", chunks: 1)
            for record in [shared, onlyOld, onlyNew, loose] { _ = try await store.commitBlob(record, repository: "app") }
            let old = manifest("old", in: "app", blobs: [shared.digest, onlyOld.digest])
            let new = manifest("new", in: "app", blobs: [shared.digest, onlyNew.digest])
            try await store.putManifest(old, tag: "v1")
            try await store.putManifest(new, tag: "v2")
            // An index keeps its untagged entries; a referrer lives while its subject does.
            let child = manifest("child", in: "app", blobs: [onlyNew.digest])
            try await store.putManifest(child, tag: nil)
            let index = manifest("index", in: "app", manifests: [child.digest])
            try await store.putManifest(index, tag: "multi")
            let signature = manifest("sig", in: "app", blobs: [], subject: new.digest)
            try await store.putManifest(signature, tag: nil)
            let orphanReferrer = manifest("sig-of-old", in: "app", subject: old.digest)
            try await store.putManifest(orphanReferrer, tag: nil)
            try await pause()

            // Within the grace period nothing goes, untagged or not.
            #expect(try await store.sweep(graceMs: 60_000, limit: 100, dryRun: false) == MetadataSweep(manifests: [], blobs: []))
            // Only `loose` is unreferenced so far.
            var swept = try await store.sweep(graceMs: 0, limit: 100, dryRun: false)
            #expect(swept.manifests == [])
            #expect(swept.blobs == [loose])

            // Untagging v1 frees its manifest, then its referrer, then its own blob; shared stays.
            try await store.deleteTag("v1", in: "app")
            try await pause()
            let dry = try await store.sweep(graceMs: 0, limit: 100, dryRun: true)
            #expect(Set(dry.manifests.map(\.digest)) == [old.digest, orphanReferrer.digest])
            #expect(dry.blobs == [onlyOld])
            #expect(try await store.manifest(old.digest.description, in: "app") != nil, "a dry run deletes nothing")
            swept = try await store.sweep(graceMs: 0, limit: 100, dryRun: false)
            #expect(swept == dry)
            #expect(try await store.manifest(old.digest.description, in: "app") == nil)
            #expect(try await store.blob(onlyOld.digest, in: nil) == nil)
            #expect(try await store.blob(shared.digest, in: "app") == shared)
            #expect(try await store.manifest(child.digest.description, in: "app") != nil)
            #expect(try await store.manifest(signature.digest.description, in: "app") != nil)
            #expect(try await store.chunkReferences(group: 1, after: 0, limit: 100).references.allSatisfy { $0.owner != onlyOld.digest.description })

            // The swept blobs' chunks wait in the deletion queue until forgotten.
            let queued = try await store.chunkDeletions(limit: 100)
            #expect(Set(queued) == Set(loose.chunks + onlyOld.chunks))
            try await store.forgetChunkDeletions(Array(queued.prefix(2)).map(\.key))
            #expect(Set(try await store.chunkDeletions(limit: 100)) == Set(queued.dropFirst(2)))

            // Deleting the index frees its entry too, in the same sweep.
            try await store.deleteTag("multi", in: "app")
            try await pause()
            swept = try await store.sweep(graceMs: 0, limit: 100, dryRun: false)
            #expect(Set(swept.manifests.map(\.digest)) == [index.digest, child.digest])
            #expect(swept.blobs == [], "only-new is still in the v2 image")
        }
    }

    @Test(arguments: Kind.allCases)
    func everyReferenceMovesTheFenceAndAManifestNeedsItsBlobsInItsTransaction(kind: Kind) async throws {
        try await withStore(kind) { store in
            // Both blobs were last referenced now; then only `layer` is, by a mount, a second later.
            // The sweep's grace falls halfway between, so only the untouched one is old enough.
            let layer = blob("layer"), idle = blob("idle")
            _ = try await store.commitBlob(layer, repository: "a")
            _ = try await store.commitBlob(idle, repository: "a")
            func sweepBetween(touched: ContinuousClock.Instant) async throws -> [BlobRecord] {
                let grace = (ContinuousClock.now - touched) + .milliseconds(500)
                return try await store.sweep(graceMs: Int64(grace / .milliseconds(1)), limit: 10, dryRun: false).blobs
            }
            try await Task.sleep(for: .seconds(1))
            var touched = ContinuousClock.now
            _ = try await store.mountBlob(layer.digest, into: "b", from: "a")
            #expect(try await sweepBetween(touched: touched) == [idle])
            // Pushed again (the chunks of the second push lose): the fence moves again.
            let other = blob("other-idle")
            _ = try await store.commitBlob(other, repository: "a")
            try await Task.sleep(for: .seconds(1))
            touched = ContinuousClock.now
            #expect(try await store.commitBlob(blob("layer", chunks: 1), repository: "c") == layer)
            #expect(try await sweepBetween(touched: touched) == [other])
            try await pause()
            #expect(try await store.sweep(graceMs: 0, limit: 10, dryRun: false).blobs == [layer])

            // The blob is gone: a manifest naming it fails rather than dangles, and is not stored.
            let image = manifest("image", in: "a", blobs: [layer.digest])
            await #expect(throws: MetadataError.blobUnknown(layer.digest)) { try await store.putManifest(image, tag: "latest") }
            #expect(try await store.manifest("latest", in: "a") == nil)
            let index = manifest("index", in: "a", manifests: [image.digest])
            await #expect(throws: MetadataError.manifestUnknown(image.digest.description)) { try await store.putManifest(index, tag: nil) }
            // Linked elsewhere is not enough: the blob must be in the manifest's repository.
            let elsewhere = blob("elsewhere")
            _ = try await store.commitBlob(elsewhere, repository: "x")
            await #expect(throws: MetadataError.blobUnknown(elsewhere.digest)) {
                try await store.putManifest(manifest("uses-other", in: "a", blobs: [elsewhere.digest]), tag: nil)
            }
        }
    }

    @Test(arguments: Kind.allCases)
    func heldChunksAreReferencedUntilTheUploadAppendsCompletesOrExpires(kind: Kind) async throws {
        try await withStore(kind) { store in
            let session = try await store.createUpload(repository: "r", client: "c", limits: .unlimited)
            let first = ChunkRef(group: 4, fileId: 10, length: 10, crc: 1)
            let second = ChunkRef(group: 4, fileId: 11, length: 10, crc: 2)
            try await store.holdChunks([first, second], upload: session.id)
            #expect(try await store.referencedGroups() == [4])
            let held = try await store.chunkReferences(group: 4, after: 0, limit: 100).references
            #expect(held.map(\.fileId) == [10, 11])
            #expect(held.allSatisfy { $0.owner == "held:" + session.id })
            await #expect(throws: MetadataError.uploadUnknown("nope")) { try await store.holdChunks([first], upload: "nope") }

            // Appended chunks are the session's own, no longer held.
            _ = try await store.appendUpload(session.id, expectedOffset: 0, chunks: [first], newOffset: 10, hashState: [1])
            let owners = try await store.chunkReferences(group: 4, after: 0, limit: 100).references.map(\.owner)
            #expect(owners == ["upload:" + session.id, "held:" + session.id])

            // Completing ends the session and stores the blob in one step; a second finisher finds it gone.
            let record = BlobRecord(digest: digest("held-blob"), size: 20, chunks: [first, second])
            #expect(try await store.completeUpload(session.id, blob: record, repository: "r") == record)
            #expect(try await store.upload(session.id) == nil)
            #expect(try await store.blob(record.digest, in: "r") == record)
            #expect(try await store.chunkReferences(group: 4, after: 0, limit: 100).references.map(\.owner) == [
                record.digest.description, record.digest.description,
            ])
            await #expect(throws: MetadataError.uploadUnknown(session.id)) {
                try await store.completeUpload(session.id, blob: record, repository: "r")
            }

            // An expired session hands back what its requests held, for deletion.
            let idle = try await store.createUpload(repository: "r", client: "c", limits: .unlimited)
            let stray = ChunkRef(group: 5, fileId: 99, length: 3, crc: 9)
            try await store.holdChunks([stray], upload: idle.id)
            let expired = try await store.expireUploads(idleSinceMs: .max, limit: 10)
            #expect(expired.map(\.id) == [idle.id])
            #expect(expired.first?.chunks == [stray])
            #expect(try await store.chunkReferences(group: 5, after: 0, limit: 100).references == [])
        }
    }
}

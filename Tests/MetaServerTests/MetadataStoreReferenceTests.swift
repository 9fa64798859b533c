import Foundation
import SpeedyCore
import Testing

/// The rules about what a manifest refers to (MetadataPlan.putManifest), on every store: which
/// references are recorded, which must exist, and what they keep from the sweep.
extension MetadataStoreConformanceTests {
    func image(_ repository: String, content: String, listed: ManifestReferences?) -> ManifestRecord {
        let bytes = Array(content.utf8)
        return ManifestRecord(
            repository: repository, digest: Digest.of(bytes), mediaType: "application/vnd.oci.image.manifest.v1+json", content: bytes,
            references: listed)
    }

    @Test(arguments: Kind.allCases)
    func aManifestKeepsEveryBlobItsContentNamesButNeedsOnlyTheListedOnes(kind: Kind) async throws {
        try await withStore(kind) { store in
            let listed = blob("listed"), named = blob("named-only"), legacy = blob("legacy-blob")
            for record in [listed, named, legacy] { _ = try await store.commitBlob(record, repository: "app") }
            // `foreign` (a foreign layer, say) is named but never pushed: only listed blobs must exist.
            let foreign = digest("foreign-layer")
            let checked = image(
                "app",
                content: """
                    {"config":{"digest":"\(listed.digest)"},"layers":[{"digest":"\(named.digest)"},{"digest":"\(foreign)"}]}
                    """,
                listed: ManifestReferences(blobs: [listed.digest], manifests: []))
            try await store.putManifest(checked, tag: "v1")
            // A manifest stored without the imageserver's list keeps what its content names too.
            let unchecked = image("app", content: "{\"config\":{\"digest\":\"\(legacy.digest)\"}}", listed: nil)
            try await store.putManifest(unchecked, tag: "old")
            try await pause()
            #expect(try await store.sweep(graceMs: 0, limit: 100, dryRun: false) == MetadataSweep(manifests: [], blobs: []))

            // Deleting a manifest drops its references: what only it named is garbage now.
            try await store.deleteManifest(checked.digest, in: "app")
            try await pause()
            let swept = try await store.sweep(graceMs: 0, limit: 100, dryRun: false)
            #expect(swept.manifests == [])
            #expect(swept.blobs.map(\.digest.description).sorted() == [listed, named].map(\.digest.description).sorted())
            #expect(try await store.blob(legacy.digest, in: "app") == legacy)
        }
    }

    @Test(arguments: Kind.allCases)
    func anIndexMayOnlyListManifestsOfItsOwnRepository(kind: Kind) async throws {
        try await withStore(kind) { store in
            let entry = manifest("entry", in: "other")
            try await store.putManifest(entry, tag: "e")
            let index = manifest("index", in: "app", manifests: [entry.digest])
            await #expect(throws: MetadataError.manifestUnknown(entry.digest.description)) { try await store.putManifest(index, tag: "i") }
            #expect(try await store.manifest("i", in: "app") == nil)
            // A missing blob is named before a missing manifest.
            let gone = digest("gone-blob")
            await #expect(throws: MetadataError.blobUnknown(gone)) {
                try await store.putManifest(manifest("both", in: "app", blobs: [gone], manifests: [entry.digest]), tag: nil)
            }
            try await store.putManifest(manifest("entry", in: "app"), tag: nil)
            try await store.putManifest(index, tag: "i")
            #expect(try await store.manifest("i", in: "app")?.digest == index.digest)
        }
    }

    @Test(arguments: Kind.allCases)
    func storingAManifestMovesItsBlobsFence(kind: Kind) async throws {
        try await withStore(kind) { store in
            let used = blob("fenced"), idle = blob("fence-idle")
            _ = try await store.commitBlob(used, repository: "a")
            _ = try await store.commitBlob(idle, repository: "a")
            try await Task.sleep(for: .seconds(1))
            let touched = ContinuousClock.now
            let pushed = manifest("pushed", in: "a", blobs: [used.digest])
            try await store.putManifest(pushed, tag: nil)
            // With the manifest gone, only the fence its push moved keeps `used` within the grace.
            try await store.deleteManifest(pushed.digest, in: "a")
            let grace = (ContinuousClock.now - touched) + .milliseconds(500)
            let swept = try await store.sweep(graceMs: Int64(grace / .milliseconds(1)), limit: 10, dryRun: false)
            #expect(swept.blobs == [idle])
        }
    }
}

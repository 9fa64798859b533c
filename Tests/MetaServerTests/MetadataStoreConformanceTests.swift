import Foundation
import Logging
import MetaServer
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyPostgres
import SpeedyTestSupport
import Testing

/// The contract of ``MetadataStore``, checked against the SQLite store itself and against
/// ``MetaClient`` talking to a metaserver over HTTP: both must behave the same.
@Suite("MetadataStore conformance")
struct MetadataStoreConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, http, postgres
        var testDescription: String { rawValue }
    }

    func withStore(_ kind: Kind, _ body: (any MetadataStore) async throws -> Void) async throws {
        if kind == .postgres {
            let store = try await PostgresMetadataStore(url: PostgresURL(await PostgresTestServer.freshDatabase()), logger: Logger(label: "test"))
            do {
                try await body(store)
            } catch {
                await store.close()
                throw error
            }
            await store.close()
            return
        }
        let temporary = try TemporaryDirectory("meta")
        defer { temporary.remove() }
        let dir = temporary.path
        let store = try SQLiteMetadataStore(path: dir + "/meta.sqlite")
        switch kind {
        case .sqlite, .postgres:
            try await body(store)
        case .http:
            let (stream, continuation) = AsyncStream<HostPort>.makeStream()
            let server = Task {
                try await HTTPServer.run(
                    role: "metaserver", router: MetaServer.router(store: store, security: .insecure), listen: HostPort(host: "127.0.0.1", port: 0),
                    logger: Logger(label: "test")
                ) { continuation.yield($0) }
            }
            var iterator = stream.makeAsyncIterator()
            let bound = await iterator.next()!
            try await body(MetaClient(baseURL: bound.url(scheme: "http"), transport: .plain))
            server.cancel()
            _ = await server.result
        }
    }

    func digest(_ seed: String) -> Digest { Digest.of(Array(seed.utf8)) }

    func blob(_ seed: String, chunks: Int = 2) -> BlobRecord {
        let refs = (0..<chunks).map { ChunkRef(group: 1, fileId: UInt64(seed.count * 100 + $0), length: 10, crc: UInt32($0)) }
        return BlobRecord(digest: digest(seed), size: UInt64(chunks * 10), chunks: refs)
    }

    @Test(arguments: Kind.allCases)
    func blobsAreVisibleOnlyWhereLinked(kind: Kind) async throws {
        try await withStore(kind) { store in
            let record = blob("layer")
            #expect(try await store.commitBlob(record, repository: "a/app") == record)
            #expect(try await store.blob(record.digest, in: "a/app") == record)
            #expect(try await store.blob(record.digest, in: nil) == record)
            #expect(try await store.blob(record.digest, in: "b/app") == nil)
            #expect(try await store.blob(digest("other"), in: nil) == nil)
            // Mounting links it into another repository.
            #expect(try await store.mountBlob(record.digest, into: "b/app", from: "a/app") == record)
            #expect(try await store.blob(record.digest, in: "b/app") == record)
            await #expect(throws: MetadataError.blobUnknown(digest("other"))) {
                try await store.mountBlob(digest("other"), into: "b/app", from: "a/app")
            }
            await #expect(throws: MetadataError.blobUnknown(record.digest)) {
                try await store.mountBlob(record.digest, into: "c/app", from: "nowhere")
            }
            // Unlinking removes it from one repository only.
            try await store.unlinkBlob(record.digest, from: "a/app")
            #expect(try await store.blob(record.digest, in: "a/app") == nil)
            #expect(try await store.blob(record.digest, in: "b/app") == record)
            await #expect(throws: MetadataError.blobUnknown(record.digest)) { try await store.unlinkBlob(record.digest, from: "a/app") }
        }
    }

    @Test(arguments: Kind.allCases)
    func secondCommitOfTheSameContentKeepsTheFirstChunks(kind: Kind) async throws {
        try await withStore(kind) { store in
            let first = blob("same")
            var second = first
            second.chunks = second.chunks.map { var c = $0; c.fileId += 1000; return c }
            _ = try await store.commitBlob(first, repository: "x")
            #expect(try await store.commitBlob(second, repository: "y") == first)
            #expect(try await store.blob(first.digest, in: "y") == first)
            var wrongSize = blob("bad")
            wrongSize.size = 999
            await #expect(throws: MetadataError.self) { try await store.commitBlob(wrongSize, repository: "x") }
        }
    }

    func manifest(_ repository: String, _ seed: String, subject: Digest? = nil, artifactType: String? = nil) -> ManifestRecord {
        let content = Array("{\"seed\":\"\(seed)\"}".utf8)
        return ManifestRecord(
            repository: repository, digest: Digest.of(content), mediaType: "application/vnd.oci.image.manifest.v1+json",
            content: content, subject: subject, artifactType: artifactType, annotations: subject == nil ? nil : ["k": seed])
    }

    @Test(arguments: Kind.allCases)
    func manifestsByTagAndDigestAndDeletes(kind: Kind) async throws {
        try await withStore(kind) { store in
            let one = manifest("r", "one")
            let two = manifest("r", "two")
            try await store.putManifest(one, tag: "latest")
            #expect(try await store.manifest("latest", in: "r") == one)
            #expect(try await store.manifest(one.digest.description, in: "r") == one)
            #expect(try await store.manifest("latest", in: "elsewhere") == nil)
            // Last writer wins for a tag; the old manifest stays by digest.
            try await store.putManifest(two, tag: "latest")
            #expect(try await store.manifest("latest", in: "r")?.digest == two.digest)
            #expect(try await store.manifest(one.digest.description, in: "r") == one)
            try await store.putManifest(two, tag: "v2")
            try await store.deleteTag("latest", in: "r")
            #expect(try await store.manifest("latest", in: "r") == nil)
            await #expect(throws: MetadataError.manifestUnknown("latest")) { try await store.deleteTag("latest", in: "r") }
            // Deleting a manifest takes its tags with it.
            try await store.deleteManifest(two.digest, in: "r")
            #expect(try await store.manifest("v2", in: "r") == nil)
            await #expect(throws: MetadataError.self) { try await store.deleteManifest(two.digest, in: "r") }
        }
    }

    @Test(arguments: Kind.allCases)
    func tagsAndRepositoriesPageInLexicalOrder(kind: Kind) async throws {
        try await withStore(kind) { store in
            let m = manifest("lib/app", "m")
            for tag in ["b", "A", "c", "a", "B10", "b2"] { try await store.putManifest(m, tag: tag) }
            var names: [String] = []
            var last: String?
            while true {
                let page = try await store.tags(in: "lib/app", after: last, limit: 2)
                names += page.names
                last = page.names.last
                if !page.more { break }
            }
            #expect(names == ["A", "a", "b", "B10", "b2", "c"])
            await #expect(throws: MetadataError.nameUnknown("missing")) { try await store.tags(in: "missing", after: nil, limit: 10) }
            try await store.putManifest(manifest("zeta", "z"), tag: "t")
            _ = try await store.commitBlob(blob("b1"), repository: "alpha")
            #expect(try await store.repositories(after: nil, limit: 2) == NamePage(names: ["alpha", "lib/app"], more: true))
            #expect(try await store.repositories(after: "lib/app", limit: 2) == NamePage(names: ["zeta"], more: false))
            #expect(try await store.repositoryExists("alpha"))
            #expect(!(try await store.repositoryExists("beta")))
        }
    }

    @Test(arguments: Kind.allCases)
    func referrersListManifestsWithASubject(kind: Kind) async throws {
        try await withStore(kind) { store in
            let image = manifest("r", "image")
            try await store.putManifest(image, tag: "latest")
            let sbom = manifest("r", "sbom", subject: image.digest, artifactType: "application/sbom")
            let sig = manifest("r", "sig", subject: image.digest, artifactType: "application/sig")
            try await store.putManifest(sbom, tag: nil)
            try await store.putManifest(sig, tag: nil)
            let all = try await store.referrers(of: image.digest, in: "r", artifactType: nil)
            #expect(Set(all.map(\.digest)) == [sbom.digest, sig.digest])
            #expect(all.first { $0.digest == sbom.digest }?.annotations == ["k": "sbom"])
            #expect(all.first { $0.digest == sbom.digest }?.size == Int64(sbom.content.count))
            let filtered = try await store.referrers(of: image.digest, in: "r", artifactType: "application/sig")
            #expect(filtered.map(\.digest) == [sig.digest])
            #expect(try await store.referrers(of: image.digest, in: "other", artifactType: nil).isEmpty)
        }
    }

    @Test(arguments: Kind.allCases)
    func uploadSessionsMoveOnlyForward(kind: Kind) async throws {
        try await withStore(kind) { store in
            let session = try await store.createUpload(repository: "r", client: "c", limits: .unlimited)
            #expect(session.offset == 0)
            #expect(try await store.upload(session.id) == session)
            let chunk = ChunkRef(group: 1, fileId: 5, length: 100, crc: 7)
            var hasher = SHA256Hasher()
            hasher.update([1, 2, 3])
            let moved = try await store.appendUpload(session.id, expectedOffset: 0, chunks: [chunk], newOffset: 100, hashState: hasher.savedState)
            #expect(moved.offset == 100)
            #expect(moved.chunks == [chunk])
            #expect(try await store.upload(session.id)?.hashState == hasher.savedState)
            // A request that lost the race sees where the upload really is.
            await #expect(throws: MetadataError.uploadOffsetMismatch(id: session.id, actual: 100)) {
                try await store.appendUpload(session.id, expectedOffset: 0, chunks: [chunk], newOffset: 100, hashState: [])
            }
            await #expect(throws: MetadataError.self) {
                try await store.appendUpload(session.id, expectedOffset: 100, chunks: [chunk], newOffset: 150, hashState: [])
            }
            try await store.deleteUpload(session.id)
            #expect(try await store.upload(session.id) == nil)
            await #expect(throws: MetadataError.uploadUnknown(session.id)) { try await store.deleteUpload(session.id) }
            await #expect(throws: MetadataError.uploadUnknown("nope")) {
                try await store.appendUpload("nope", expectedOffset: 0, chunks: [], newOffset: 0, hashState: [])
            }
        }
    }

    @Test(arguments: Kind.allCases)
    func chunkReferencesCoverBlobsAndUploadsInFileIdOrder(kind: Kind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.referencedGroups() == [])
            // Blob chunks in groups 1 and 2, and an upload in progress with one chunk in group 3.
            let refs: [ChunkRef] = (1...7).map { (n: Int) -> ChunkRef in
                let group: UInt32 = n % 2 == 0 ? 2 : 1
                return ChunkRef(group: group, fileId: UInt64(n * 10), length: 10, crc: UInt32(n))
            }
            let record = BlobRecord(digest: digest("big"), size: 70, chunks: refs)
            _ = try await store.commitBlob(record, repository: "a/app")
            let upload = try await store.createUpload(repository: "a/app", client: "c", limits: .unlimited)
            _ = try await store.appendUpload(
                upload.id, expectedOffset: 0, chunks: [ChunkRef(group: 1, fileId: 25, length: 5, crc: 9), ChunkRef(group: 3, fileId: 1, length: 5, crc: 8)],
                newOffset: 10, hashState: upload.hashState)
            #expect(try await store.referencedGroups() == [1, 2, 3])

            // Group 1: blob chunks 10, 30, 50, 70 and the upload's 25, paged two blob chunks at a time.
            var seen: [ChunkReference] = []
            var after: UInt64 = 0
            var pages = 0
            while true {
                let page = try await store.chunkReferences(group: 1, after: after, limit: 2)
                seen += page.references
                pages += 1
                guard let next = page.nextAfter else { break }
                after = next
            }
            #expect(seen.map(\.fileId) == [10, 25, 30, 50, 70])
            #expect(pages == 3)
            #expect(seen[1].owner == "upload:" + upload.id)
            #expect(seen[0].owner == record.digest.description)
            #expect(seen[0].crc == 1)
            #expect(try await store.chunkReferences(group: 2, after: 0, limit: 100).references.map(\.fileId) == [20, 40, 60])
            #expect(try await store.chunkReferences(group: 3, after: 0, limit: 100).references.map(\.owner) == ["upload:" + upload.id])
            #expect(try await store.chunkReferences(group: 9, after: 0, limit: 100) == ChunkReferencePage(references: [], nextAfter: nil))
            // A finished upload no longer refers to anything.
            try await store.deleteUpload(upload.id)
            #expect(try await store.referencedGroups() == [1, 2])
        }
    }

    @Test(arguments: Kind.allCases)
    func uploadCapsCountOpenSessionsPerRepositoryAndPerClient(kind: Kind) async throws {
        try await withStore(kind) { store in
            let limits = UploadLimits(perRepository: 2, perClient: 3)
            let first = try await store.createUpload(repository: "r1", client: "c1", limits: limits)
            _ = try await store.createUpload(repository: "r1", client: "c2", limits: limits)
            await #expect(throws: MetadataError.tooManyUploads("repository r1 has 2 open uploads (the limit is 2)")) {
                try await store.createUpload(repository: "r1", client: "c3", limits: limits)
            }
            // c1 fills its own cap across other repositories; another client is not held back by it.
            _ = try await store.createUpload(repository: "r2", client: "c1", limits: limits)
            _ = try await store.createUpload(repository: "r3", client: "c1", limits: limits)
            await #expect(throws: MetadataError.tooManyUploads("client c1 has 3 open uploads (the limit is 3)")) {
                try await store.createUpload(repository: "r4", client: "c1", limits: limits)
            }
            _ = try await store.createUpload(repository: "r4", client: "c2", limits: limits)
            // Only open sessions count: ending one makes room in the repository and for the client.
            try await store.deleteUpload(first.id)
            _ = try await store.createUpload(repository: "r1", client: "c1", limits: limits)
            // Unlimited ignores both counts; a zero cap admits nothing; a negative one is refused.
            for _ in 0..<3 { _ = try await store.createUpload(repository: "r1", client: "c1", limits: .unlimited) }
            await #expect(throws: MetadataError.self) {
                try await store.createUpload(repository: "empty", client: "new", limits: UploadLimits(perRepository: 0, perClient: 5))
            }
            await #expect(throws: MetadataError.self) {
                try await store.createUpload(repository: "r9", client: "c9", limits: UploadLimits(perRepository: -1, perClient: 5))
            }
            #expect(try await store.expireUploads(idleSinceMs: .max, limit: 100).count == 8)
        }
    }

    @Test(arguments: Kind.allCases)
    func concurrentUploadStartsNeverOvershootACap(kind: Kind) async throws {
        try await withStore(kind) { store in
            let limits = UploadLimits(perRepository: 3, perClient: 100)
            // Each start answers nil when it got a session, else its error.
            let outcomes = await withTaskGroup(of: MetadataError?.self) { group in
                for n in 0..<10 {
                    group.addTask {
                        do throws(MetadataError) {
                            _ = try await store.createUpload(repository: "burst", client: "c\(n)", limits: limits)
                            return nil
                        } catch {
                            return error
                        }
                    }
                }
                return await group.reduce(into: [MetadataError?]()) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == nil }.count == 3)
            #expect(outcomes.compactMap { $0 }.allSatisfy { if case .tooManyUploads = $0 { true } else { false } })
        }
    }

    @Test(arguments: Kind.allCases)
    func expiryTakesSessionsIdleSinceTheCutoffWithTheirChunks(kind: Kind) async throws {
        try await withStore(kind) { store in
            let chunk = ChunkRef(group: 4, fileId: 40, length: 10, crc: 1)
            let idle = try await store.createUpload(repository: "r", client: "c", limits: .unlimited)
            let idleMoved = try await store.appendUpload(idle.id, expectedOffset: 0, chunks: [chunk], newOffset: 10, hashState: idle.hashState)
            let touched = try await store.createUpload(repository: "r", client: "c", limits: .unlimited)
            try await Task.sleep(for: .milliseconds(5))
            let cutoff = currentTimeMillis()
            try await Task.sleep(for: .milliseconds(5))
            // Created before the cutoff but appended to after it: not idle.
            _ = try await store.appendUpload(touched.id, expectedOffset: 0, chunks: [], newOffset: 0, hashState: touched.hashState)
            let fresh = try await store.createUpload(repository: "r", client: "c", limits: .unlimited)

            #expect(try await store.expireUploads(idleSinceMs: cutoff, limit: 10) == [idleMoved])
            #expect(try await store.upload(idle.id) == nil)
            await #expect(throws: MetadataError.uploadUnknown(idle.id)) {
                try await store.appendUpload(idle.id, expectedOffset: 10, chunks: [], newOffset: 10, hashState: [])
            }
            #expect(try await store.expireUploads(idleSinceMs: cutoff, limit: 10) == [])
            #expect(try await store.expireUploads(idleSinceMs: .max, limit: 0) == [])
            // At most `limit` at a time, least recently touched first.
            #expect(try await store.expireUploads(idleSinceMs: .max, limit: 1).map(\.id) == [touched.id])
            #expect(try await store.upload(fresh.id) == fresh)
            #expect(try await store.expireUploads(idleSinceMs: .max, limit: 1).map(\.id) == [fresh.id])
            #expect(try await store.referencedGroups() == [])
        }
    }

    @Test(arguments: Kind.allCases)
    func concurrentExpiriesNeverReturnTheSameSession(kind: Kind) async throws {
        try await withStore(kind) { store in
            var ids: Set<String> = []
            for _ in 0..<20 { ids.insert(try await store.createUpload(repository: "r", client: "c", limits: .unlimited).id) }
            async let one = store.expireUploads(idleSinceMs: .max, limit: 100)
            async let two = store.expireUploads(idleSinceMs: .max, limit: 100)
            async let three = store.expireUploads(idleSinceMs: .max, limit: 7)
            let batches = [try await one, try await two, try await three].map { $0.map(\.id) }
            #expect(batches.map(\.count).reduce(0, +) == 20)
            #expect(Set(batches.joined()) == ids)
        }
    }

    @Test(arguments: Kind.allCases)
    func repairSwapsChunksOnlyWhileTheyAreTheStaleOnes(kind: Kind) async throws {
        try await withStore(kind) { store in
            let original = blob("layer")
            _ = try await store.commitBlob(original, repository: "a")
            // New chunks cut differently (5 + 5 + 10 bytes) in another group.
            let repaired = BlobRecord(
                digest: original.digest, size: 20,
                chunks: [5, 5, 10].enumerated().map { ChunkRef(group: 2, fileId: UInt64(900 + $0), length: $1, crc: 7) })
            #expect(try await store.repairBlob(repaired, replacing: original.chunks, repository: "b") == repaired)
            #expect(try await store.blob(original.digest, in: "a") == repaired)
            #expect(try await store.blob(original.digest, in: "b") == repaired)
            // The old chunk rows are gone, not just shadowed.
            #expect(try await store.chunkReferences(group: 1, after: 0, limit: 100).references == [])
            #expect(try await store.chunkReferences(group: 2, after: 0, limit: 100).references.map(\.fileId) == [900, 901, 902])

            // A second repairer that read the original chunks lost the race: nothing changes.
            var late = original
            late.chunks = late.chunks.map { var c = $0; c.fileId += 5000; return c }
            #expect(try await store.repairBlob(late, replacing: original.chunks, repository: "c") == repaired)
            #expect(try await store.blob(original.digest, in: nil) == repaired)
            #expect(try await store.blob(original.digest, in: "c") == nil)

            // No stored record: the repair commits it.
            let missing = blob("missing")
            #expect(try await store.repairBlob(missing, replacing: [], repository: "d") == missing)
            #expect(try await store.blob(missing.digest, in: "d") == missing)

            var wrongSize = late
            wrongSize.size = 21
            await #expect(throws: MetadataError.self) { try await store.repairBlob(wrongSize, replacing: repaired.chunks, repository: "a") }
            #expect(try await store.blob(original.digest, in: nil) == repaired)
        }
    }

    @Test(arguments: Kind.allCases)
    func blobPagesWalkEveryBlobInDigestOrder(kind: Kind) async throws {
        try await withStore(kind) { store in
            #expect(try await store.blobs(after: nil, limit: 10) == BlobPage(blobs: [], nextAfter: nil))
            // Distinct chunks per blob, so a page that mixed up whose chunks are whose would show.
            let records = (1...7).map { n in
                var record = blob("blob-\(n)", chunks: n % 3 + 1)
                record.chunks = record.chunks.map { var c = $0; c.fileId += UInt64(n * 1000); return c }
                return record
            }
            for (n, record) in records.enumerated() { _ = try await store.commitBlob(record, repository: n % 2 == 0 ? "even" : "odd") }
            // Unlinked blobs keep their chunks until garbage collection, so fsck still sees them.
            try await store.unlinkBlob(records[0].digest, from: "even")

            var seen: [BlobRecord] = []
            var sizes: [Int] = []
            var after: String?
            while true {
                let page = try await store.blobs(after: after, limit: 3)
                seen += page.blobs
                sizes.append(page.blobs.count)
                guard let next = page.nextAfter else { break }
                #expect(next == page.blobs.last?.digest.description)
                after = next
            }
            #expect(sizes == [3, 3, 1])
            #expect(seen == records.sorted { $0.digest.description < $1.digest.description })
            // A limit below one still returns one blob; nothing follows the last digest.
            let smallest = seen[0].digest.description
            #expect(try await store.blobs(after: nil, limit: 0) == BlobPage(blobs: [seen[0]], nextAfter: smallest))
            #expect(try await store.blobs(after: seen[6].digest.description, limit: 3) == BlobPage(blobs: [], nextAfter: nil))
        }
    }
}

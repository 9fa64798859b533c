@testable import ImageServer
import NIOCore
import SpeedyCore
import SpeedyTestSupport
import Testing

@Suite("Registry building blocks")
struct RegistryPartsTests {
    @Test func chunkMapMembersTakeTurnsAmongTheReadableOnly() {
        let members = ["a", "b", "c", "down"]
        #expect(RegistryAPI.turn(members, readable: 3, by: 0) == ["a", "b", "c", "down"])
        #expect(RegistryAPI.turn(members, readable: 3, by: 1) == ["b", "c", "a", "down"])
        #expect(RegistryAPI.turn(members, readable: 3, by: 5) == ["c", "a", "b", "down"])
        #expect(RegistryAPI.turn(members, readable: 1, by: 7) == members)
        #expect(RegistryAPI.turn(members, readable: 0, by: 7) == members)
        #expect(RegistryAPI.turn([], readable: 0, by: 3) == [])
    }

    @Test func pathsWithSlashesInNamesParse() {
        #expect(OCIPath(path: "/v2/") == .base)
        #expect(OCIPath(path: "/v2") == .base)
        #expect(OCIPath(path: "/v2/_catalog") == .catalog)
        #expect(OCIPath(path: "/v2/library/ubuntu/tags/list") == .tags(name: "library/ubuntu"))
        #expect(OCIPath(path: "/v2/a/b/c/manifests/latest") == .manifest(name: "a/b/c", reference: "latest"))
        #expect(OCIPath(path: "/v2/app/blobs/uploads/") == .uploads(name: "app"))
        #expect(OCIPath(path: "/v2/app/blobs/uploads") == .uploads(name: "app"))
        #expect(OCIPath(path: "/v2/app/blobs/uploads/1234") == .upload(name: "app", id: "1234"))
        #expect(OCIPath(path: "/v2/x/blobs/y/blobs/sha256:ab") == .blob(name: "x/blobs/y", digest: "sha256:ab"))
        #expect(OCIPath(path: "/v2/app/referrers/sha256:ab") == .referrers(name: "app", digest: "sha256:ab"))
        #expect(OCIPath(path: "/v2/team/app/_speedy/chunks/sha256:ab") == .chunkMap(name: "team/app", digest: "sha256:ab"))
        #expect(OCIPath(path: "/v2/team/app/_speedy/chunks/sha256:ab")?.routeLabel == "/v2/<name>/_speedy/chunks/<digest>")
        #expect(OCIPath(path: "/v2/_speedy/chunks/sha256:ab") == nil)
        #expect(OCIPath(path: "/v2/app/_speedy/chunks/") == nil)
        #expect(OCIPath(path: "/v2/app/_speedy/other/sha256:ab") == nil)
        #expect(OCIPath(path: "/v2/manifests/latest") == nil)
        #expect(OCIPath(path: "/v3/app/manifests/latest") == nil)
        #expect(OCIPath(path: "/v2/app/unknown/thing") == nil)
    }

    @Test func repositoryNamesAndTagsFollowTheSpec() {
        for good in ["a", "library/ubuntu", "my-app", "my__app", "a.b/c_d/e--f", "x9/y8"] {
            #expect(OCINames.isValidRepository(good), "\(good)")
        }
        for bad in ["", "Upper", "../etc", "a//b", "-a", "a-", "a___b", "a/", "/a", "a..b", String(repeating: "a", count: 256)] {
            #expect(!OCINames.isValidRepository(bad), "\(bad)")
        }
        #expect(OCINames.isValidTag("latest"))
        #expect(OCINames.isValidTag("_v1.2-rc"))
        #expect(!OCINames.isValidTag(".hidden"))
        #expect(!OCINames.isValidTag("a/b"))
        #expect(!OCINames.isValidTag(String(repeating: "t", count: 129)))
    }

    @Test func digestsParseStrictly() {
        let hex = String(repeating: "ab", count: 32)
        #expect(Digest(parsing: "sha256:\(hex)")?.hex == hex)
        #expect(Digest(parsing: "sha256:\(hex.uppercased())") == nil)
        #expect(Digest(parsing: "sha256:abc") == nil)
        #expect(Digest(parsing: "md5:\(hex)") == nil)
        #expect(Digest(parsing: "sha512:" + String(repeating: "0", count: 128)) != nil)
    }

    @Test func sha256MatchesKnownValuesAndResumesFromSavedState() {
        #expect(Digest.of(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.of([]).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        var first = SHA256Hasher()
        first.update(Array("a".utf8))
        guard var resumed = SHA256Hasher(savedState: first.savedState) else {
            Issue.record("saved state did not restore")
            return
        }
        resumed.update(Array("bc".utf8))
        #expect(resumed.finalize().hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256Hasher(savedState: [1, 2, 3]) == nil)
    }

    @Test func rangesResolveAgainstTheBlobLength() {
        #expect(ByteRangeRequest.resolve("bytes=0-9", length: 100) == .partial(0...9))
        #expect(ByteRangeRequest.resolve("bytes=90-", length: 100) == .partial(90...99))
        #expect(ByteRangeRequest.resolve("bytes=-10", length: 100) == .partial(90...99))
        #expect(ByteRangeRequest.resolve("bytes=50-500", length: 100) == .partial(50...99))
        #expect(ByteRangeRequest.resolve("bytes=100-", length: 100) == .unsatisfiable)
        #expect(ByteRangeRequest.resolve("bytes=0-1,5-6", length: 100) == .whole)
        #expect(ByteRangeRequest.resolve("items=0-1", length: 100) == .whole)
    }

    @Test func piecesCoverExactlyTheRequestedBytes() {
        let chunks = [10, 10, 5].enumerated().map { ChunkRef(group: 1, fileId: UInt64($0.offset), length: UInt32($0.element), crc: 0) }
        let whole = BlobStream.pieces(of: chunks, range: 0...24)
        #expect(whole.map(\.length) == [10, 10, 5])
        let middle = BlobStream.pieces(of: chunks, range: 8...21)
        #expect(middle.map(\.ref.fileId) == [0, 1, 2])
        #expect(middle.map(\.start) == [8, 0, 0])
        #expect(middle.map(\.length) == [2, 10, 2])
        #expect(BlobStream.pieces(of: chunks, range: 20...24).map(\.ref.fileId) == [2])
    }

    @Test func manifestsAreCheckedForShapeAndReferences() throws {
        let config = "sha256:" + String(repeating: "1", count: 64)
        let layer = "sha256:" + String(repeating: "2", count: 64)
        let image = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":2},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(layer)","size":9}],
             "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(layer)","size":9}}
            """
        let parsed = try ManifestParser.parse(Array(image.utf8), contentType: "application/vnd.oci.image.manifest.v1+json")
        #expect(parsed.blobs.map(\.description) == [config, layer])
        #expect(parsed.subject?.description == layer)
        #expect(parsed.artifactType == "application/vnd.oci.image.config.v1+json")
        #expect(throws: ManifestError.self) { try ManifestParser.parse(Array("not json".utf8), contentType: nil) }
        #expect(throws: ManifestError.self) {
            try ManifestParser.parse(Array(image.utf8), contentType: "application/vnd.docker.distribution.manifest.v2+json")
        }
        #expect(throws: ManifestError.self) { try ManifestParser.parse(Array("{\"schemaVersion\":1}".utf8), contentType: "application/json") }
        let index = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"\(layer)","size":3}]}
            """
        #expect(try ManifestParser.parse(Array(index.utf8), contentType: nil).manifests.map(\.description) == [layer])
    }

    /// The first chunk of a blob GET, read before the answer, is handed to the body's writer
    /// once and not kept by the response: a chunk held until the whole blob is sent was 4 MiB per
    /// stream outside the budget (an imageserver at 600 MiB for 100 pulls with a 96 MiB budget).
    @Test func theFirstChunkIsHandedOverOnceAndNotKept() async throws {
        let budget = MemoryBudget(bytes: 10, perClient: 10)
        var reservation: BudgetReservation? = try await budget.reserve(4, client: "a")
        weak let held = reservation
        let handoff = BlobStream.FirstChunk(BlobStream.Fetched(data: ByteBuffer(repeating: 7, count: 4), held: reservation!))
        reservation = nil
        #expect(held != nil, "the handoff holds the chunk until it is taken")
        var taken = handoff.take()
        #expect(taken?.data.readableBytes == 4)
        #expect(handoff.take() == nil, "only once")
        taken = nil
        #expect(held == nil, "once taken and written, nothing keeps the chunk or its reservation")
        #expect(budget.available == 10, "its reservation went back with it")
        _ = taken
    }

    @Test func memoryBudgetBlocksUntilReleased() async throws {
        let budget = MemoryBudget(bytes: 10, perClient: 10)
        try await budget.acquire(8, client: "a")
        let waiter = Task {
            try await budget.acquire(5, client: "b")
            return true
        }
        try? await Task.sleep(for: .milliseconds(50))
        budget.release(8, client: "a")
        #expect(try await waiter.value)
        budget.release(5, client: "b")
        #expect(budget.available == 10)
    }

    /// A request that cannot get its bytes in time is refused rather than left waiting forever,
    /// and gets nothing.
    @Test func memoryBudgetWaitsAtMostItsLimit() async throws {
        let budget = MemoryBudget(bytes: 10, perClient: 10, waitLimit: .milliseconds(200))
        try await budget.acquire(10, client: "a")
        let started = ContinuousClock.now
        await #expect(throws: BudgetExhausted.self) { try await budget.acquire(1, client: "b") }
        // Far above the 200 ms limit: the whole suite runs in parallel on two cores, so this only
        // checks that the wait ends rather than how soon.
        #expect(ContinuousClock.now - started < .seconds(15))
        budget.release(10, client: "a")
        #expect(budget.available == 10)
    }

    /// One client at its share waits, and others still get through.
    @Test func memoryBudgetCapsEachClient() async throws {
        let budget = MemoryBudget(bytes: 100, perClient: 40, waitLimit: .milliseconds(300))
        try await budget.acquire(40, client: "greedy")
        await #expect(throws: BudgetExhausted.self) { try await budget.acquire(1, client: "greedy") }
        try await budget.acquire(40, client: "other")
        #expect(budget.available == 20)
        // A waiter held back by its own cap does not hold up a later client that fits.
        let capped = Task { try await budget.acquire(10, client: "greedy") }
        try? await Task.sleep(for: .milliseconds(20))
        try await budget.acquire(10, client: "third")
        budget.release(40, client: "greedy")
        try await capped.value
        #expect(budget.available == 40)
    }

    /// A reservation gives its bytes back once, whether released or dropped.
    @Test func budgetReservationsReturnTheirBytesOnce() async throws {
        let budget = MemoryBudget(bytes: 10, perClient: 10)
        var reservation: BudgetReservation? = try await budget.reserve(6, client: "a")
        reservation?.release()
        reservation?.release()
        #expect(budget.available == 10)
        reservation = try await budget.reserve(6, client: "a")
        #expect(budget.available == 4)
        reservation = nil
        #expect(budget.available == 10)
    }

    @Test func contentRangesParseWithoutOverflow() {
        #expect(UploadContentRange(parsing: "0-99")?.length == 100)
        #expect(UploadContentRange(parsing: "bytes 100-199/1000")?.length == 100)
        #expect(UploadContentRange(parsing: "bytes=5-5/*")?.start == 5)
        // The request that killed the registry: the count does not fit in 64 bits.
        let huge = UploadContentRange(parsing: "0-18446744073709551615")
        #expect(huge != nil && huge?.length == nil)
        #expect(UploadContentRange(parsing: "1-18446744073709551615")?.length == UInt64.max)
        for bad in ["", "-", "5-", "-5", "9-8", "+1-2", "1-+2", " 1-2", "1-2-3", "0-18446744073709551616", "a-b", "1-2/x", "1-2/"] {
            #expect(UploadContentRange(parsing: bad) == nil, "\(bad)")
        }
    }

    /// Random and mutated headers never trap, and whatever parses is consistent.
    @Test func contentRangeParserSurvivesFuzzing() {
        var generator = SeededGenerator(seed: 0x5eed)
        let alphabet = Array("0123456789-/ bytes=*+".utf8)
        let seeds = ["0-18446744073709551615", "bytes 0-99/100", "18446744073709551615-18446744073709551615"]
        for round in 0..<20_000 {
            var bytes: [UInt8]
            if round % 2 == 0 {
                bytes = Array(seeds[round % seeds.count].utf8)
                for _ in 0..<Int.random(in: 1...4, using: &generator) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = alphabet.randomElement(using: &generator)!
                }
            } else {
                bytes = (0..<Int.random(in: 0...45, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }
            }
            if let range = UploadContentRange(parsing: String(decoding: bytes, as: UTF8.self)) {
                #expect(range.end >= range.start)
                if let length = range.length { #expect(length == range.end - range.start + 1) }
            }
        }
    }
}

import Foundation
import Logging
import NIOHTTP1
import SpeedyCore
import SpeedyTestSupport
import Testing

@testable import PeerAgent

#if canImport(Glibc)
import Glibc
#endif

/// The node agent's blob cache on its own (issue 23): LRU order, reservations for downloads in
/// progress, evictions that spare what was used since, and what a restart finds.
@Suite("Node agent: blob cache")
struct BlobCacheTests {
    let logger = Logger(label: "test.blob-cache")

    /// A blob of `count` bytes, different for each `seed`.
    func blob(_ count: Int, _ seed: UInt8) -> (digest: Digest, bytes: [UInt8]) {
        let bytes = TestBytes.random(count, seed: Int(seed))
        return (Digest.of(bytes), bytes)
    }

    /// Writes `bytes` as a download in `cache`'s tmp folder and commits it, with `reserved`.
    func put(_ cache: BlobCache, _ blob: (digest: Digest, bytes: [UInt8]), reserved: UInt64 = 0) throws {
        let temporary = cache.temporaryPath()
        try Data(blob.bytes).write(to: URL(fileURLWithPath: temporary))
        cache.commit(temporary, digest: blob.digest, size: UInt64(blob.bytes.count), reserved: reserved)
    }

    /// Whether `blob`'s file is in `cache`'s folder.
    func cached(_ cache: BlobCache, _ blob: (digest: Digest, bytes: [UInt8])) -> Bool {
        FileManager.default.fileExists(atPath: cache.path(of: blob.digest))
    }

    @Test func theLeastRecentlyUsedGoFirst() throws {
        let directory = try TemporaryDirectory("blob-cache")
        defer { directory.remove() }
        let cache = try BlobCache(directory: directory.path, limit: 3000, logger: logger)
        let (a, b, c, d) = (blob(1000, 1), blob(1000, 2), blob(1000, 3), blob(1000, 4))
        for item in [a, b, c] { try put(cache, item) }
        #expect(cache.openForReading(a.digest) != nil)  // a is now used after b and c
        try put(cache, d)
        #expect(cached(cache, a) && !cached(cache, b) && cached(cache, c) && cached(cache, d))
        #expect(cache.usage().bytes == 3000 && cache.usage().blobs == 3)
    }

    @Test func reservationsCountTowardTheLimit() throws {
        let directory = try TemporaryDirectory("blob-cache")
        defer { directory.remove() }
        let cache = try BlobCache(directory: directory.path, limit: 3000, logger: logger)
        let (a, b, c) = (blob(1000, 1), blob(1000, 2), blob(1500, 3))
        try put(cache, a)
        try put(cache, b)
        #expect(!cache.reserve(3001))  // never fits
        #expect(cache.usage().reserved == 0)
        // Room for a 1500-byte download: a, the older, goes now, before the download's bytes land.
        #expect(cache.reserve(1500))
        #expect(!cached(cache, a) && cached(cache, b))
        #expect(cache.usage().reserved == 1500)
        try put(cache, c, reserved: 1500)
        #expect(cache.usage().reserved == 0 && cache.usage().bytes == 2500)
        // A released reservation frees its room; nothing more is evicted for it.
        #expect(cache.reserve(500))
        cache.release(500)
        #expect(cache.usage().reserved == 0 && cached(cache, b) && cached(cache, c))
    }

    @Test func anOpenBlobOrAReCommittedOneIsNotEvicted() throws {
        let directory = try TemporaryDirectory("blob-cache")
        defer { directory.remove() }
        let cache = try BlobCache(directory: directory.path, limit: 2000, logger: logger)
        let (a, b, c) = (blob(1000, 1), blob(1000, 2), blob(1000, 3))
        try put(cache, a)
        try put(cache, b)
        let open = try #require(cache.openForReading(a.digest))
        try put(cache, a)  // re-committed: newest again
        try put(cache, c)  // b goes, not a
        #expect(cached(cache, a) && !cached(cache, b) && cached(cache, c))
        // An open file stays readable when evicted under it.
        try put(cache, blob(1000, 4))
        try put(cache, blob(1000, 5))
        #expect(!cached(cache, a))
        var buffer = [UInt8](repeating: 0, count: 1000)
        #expect(pread(open.fd, &buffer, 1000, 0) == 1000 && buffer == a.bytes)
        // A damaged copy is dropped only if it is still the one in the cache.
        try put(cache, a)
        cache.remove(a.digest, file: open)
        #expect(cached(cache, a))
    }

    @Test func aMissingOrShortFileDropsItsEntry() throws {
        let directory = try TemporaryDirectory("blob-cache")
        defer { directory.remove() }
        let cache = try BlobCache(directory: directory.path, limit: 10_000, logger: logger)
        let (a, b) = (blob(1000, 1), blob(1000, 2))
        try put(cache, a)
        try put(cache, b)
        unlink(cache.path(of: a.digest))
        #expect(cache.openForReading(a.digest) == nil)
        #expect(cache.usage().blobs == 1 && cache.usage().bytes == 1000)
        #expect(truncate(cache.path(of: b.digest), 10) == 0)
        #expect(cache.openForReading(b.digest) == nil)
        #expect(cache.usage().blobs == 0 && !cached(cache, b))
    }

    @Test func aRestartReindexesInUseOrderAndDeletesLeftovers() throws {
        let directory = try TemporaryDirectory("blob-cache")
        defer { directory.remove() }
        let (a, b, c, d) = (blob(1000, 1), blob(1000, 2), blob(1000, 3), blob(1000, 4))
        var leftover = ""
        do {
            let cache = try BlobCache(directory: directory.path, limit: 3000, logger: logger)
            // File times a jiffy or more apart: the kernel's clock for them is coarse.
            for item in [a, b, c] {
                try put(cache, item)
                usleep(20_000)
            }
            #expect(cache.openForReading(a.digest) != nil)
            leftover = cache.temporaryPath()
            try Data([1, 2, 3]).write(to: URL(fileURLWithPath: leftover))
        }
        let cache = try BlobCache(directory: directory.path, limit: 3000, logger: logger)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(cache.usage().blobs == 3 && cache.usage().bytes == 3000)
        usleep(20_000)
        try put(cache, d)  // b is the least recently used across the restart
        #expect(cached(cache, a) && !cached(cache, b) && cached(cache, c))
        // A smaller limit at start trims the oldest.
        let smaller = try BlobCache(directory: directory.path, limit: 2000, logger: logger)
        #expect(smaller.usage().blobs == 2 && !cached(smaller, c))
    }
}

/// The registry's range answers, as the agent checks them before relaying their bytes.
@Suite("Node agent: Content-Range checks")
struct ContentRangeTests {
    /// Why ``RegistryUpstream/checkContentRange(_:from:total:)`` refuses `value` (nil: it passes).
    func check(_ value: String?, from offset: UInt64, total: UInt64?) -> String? {
        var headers = HTTPHeaders()
        if let value { headers.add(name: "Content-Range", value: value) }
        do {
            try RegistryUpstream.checkContentRange(headers, from: offset, total: total)
            return nil
        } catch {
            guard case .blobUnavailable(let reason) = error else { return "wrong error \(error)" }
            return reason
        }
    }

    @Test func aRangeFromTheOffsetAskedPasses() {
        #expect(check("bytes 100-999/1000", from: 100, total: 1000) == nil)
        #expect(check("bytes 100-999/1000", from: 100, total: nil) == nil)
        #expect(check("bytes 100-999/*", from: 100, total: 1000) == nil)
        #expect(check("bytes 0-0/1", from: 0, total: 1) == nil)
    }

    @Test func anythingElseIsRefused() {
        #expect(check(nil, from: 100, total: 1000)?.contains("no Content-Range") == true)
        #expect(check("bytes 0-999/1000", from: 100, total: 1000)?.contains("bytes 0-999/1000") == true)  // start differs
        #expect(check("bytes 100-999/2000", from: 100, total: 1000) != nil)  // total differs
        #expect(check("bytes 100-1000/1000", from: 100, total: 1000) != nil)  // ends past the total
        #expect(check("bytes 100-99/1000", from: 100, total: 1000) != nil)  // ends before it starts
        for malformed in ["100-999/1000", "bytes 100-999", "bytes -999/1000", "bytes +100-999/1000", "bytes 100-999/", "items 100-999/1000", "bytes 1 00-999/1000"] {
            #expect(check(malformed, from: 100, total: 1000)?.contains("malformed") == true, "\(malformed)")
        }
        // Numbers past 64 bits are malformed, not wrapped.
        #expect(check("bytes 18446744073709551716-18446744073709551717/*", from: 100, total: nil)?.contains("malformed") == true)
        #expect(check("bytes 100-999/99999999999999999999999", from: 100, total: 1000)?.contains("malformed") == true)
    }
}

/// Which paths the agent forwards to the registry.
@Suite("Node agent: forwarded paths")
struct RegistryPathTests {
    @Test func onlyPlainV2PathsAreForwarded() {
        #expect(MirrorRoutes.registryPath("/v2") == "/v2/")
        #expect(MirrorRoutes.registryPath("/v2/") == "/v2/")
        #expect(MirrorRoutes.registryPath("/v2/team/app/manifests/v1") == "/v2/team/app/manifests/v1")
        #expect(MirrorRoutes.registryPath("/v2/team/app/blobs/sha256:ab") == "/v2/team/app/blobs/sha256:ab")
        #expect(MirrorRoutes.registryPath("/v2/team/app/tags/list/") == "/v2/team/app/tags/list/")
        for path in ["//v2/../x", "/v2/../metrics", "/v2/./x", "/v2//x", "/v2/%2e%2E/x", "/v2/a%2Fb/x", "/v2/a%5cb", "/v2/%zz", "/x/v2/", "/v20/", "v2/", "/v2/a/%00"] {
            #expect(MirrorRoutes.registryPath(path) == nil, "\(path)")
        }
    }
}

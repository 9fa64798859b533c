import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SpeedyCore

/// Pushes and pulls blobs through the OCI Distribution API of any registry and checks every digest:
/// the seed's table (concurrency 10/50/100, 16 MiB blobs), against Speedy or a reference registry.
struct RegistryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "registry",
        abstract: "Push and pull N blobs of S bytes with C concurrent clients through a registry's OCI API.",
        discussion: """
            Each push is what docker and skopeo do: POST an upload, PATCH the body, PUT with the digest. \
            Each pull streams the blob back and verifies its SHA-256. Blobs are distinct random data \
            (no deduplication helps). With --server-pid the peak resident memory of that process \
            during the run is reported too.
            """
    )

    @Option(help: "Registry base URL.")
    var url = "http://127.0.0.1:6788"

    @Option(help: ArgumentHelp("Registry to pull through (default: --url); another imageserver of the same cluster, say.", valueName: "url"))
    var pullUrl: String?

    /// Which phases to run.
    enum Phases: String, ExpressibleByArgument, CaseIterable {
        case push, pull, both
    }

    @Option(help: "Phases to run: push, pull (blobs pushed before with the same --seed, --count and --size) or both.")
    var phase: Phases = .both

    @Option(help: "Repository to push to.")
    var repository = "bench/blobs"

    @Option(help: "Number of blobs.")
    var count = 100

    @Option(help: "Size of each blob.")
    var size = "16M"

    @Option(help: "Concurrent clients.")
    var concurrency = 10

    @Option(help: "PID of the registry process, to sample its resident memory.")
    var serverPid: Int32?

    @Option(help: "Seed for the blob contents (change it to push new blobs to the same registry).")
    var seed: UInt64 = UInt64(Date().timeIntervalSince1970)

    @Option(help: ArgumentHelp("After pushing, tag one image whose layers are every blob pushed (so garbage collection keeps them).", valueName: "tag"))
    var tag: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Result: Codable {
        var url: String
        var blobs: Int
        var blobBytes: Int
        var concurrency: Int
        var pushMBps: Double
        var pushP50Ms: Double
        var pushP99Ms: Double
        var pullMBps: Double
        var pullP50Ms: Double
        var pullP99Ms: Double
        var serverPeakRSSBytes: Int?
        /// Wall-clock bounds of each phase and every operation's latency, so that runs from
        /// several client hosts at once can be added up (`Tests/Lab/lab-bench`).
        var pushStartedAt: Double?
        var pushEndedAt: Double?
        var pullStartedAt: Double?
        var pullEndedAt: Double?
        var pushLatenciesMs: [Double]?
        var pullLatenciesMs: [Double]?
    }

    func run() async throws {
        guard let bytes = ByteSize.parse(size), bytes > 0 else { throw ValidationError("--size must be a size such as 16M") }
        guard count > 0, concurrency > 0 else { throw ValidationError("--count and --concurrency must be positive") }
        let blobSize = Int(bytes)
        var config = HTTPClient.Configuration()
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, concurrency))
        config.timeout = .init(connect: .seconds(5), read: .seconds(120))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        let base = MasterLocation.normalize(url, scheme: "http")
        let repository = self.repository
        let seed = self.seed

        if !json { print("speedy-bench registry: \(base), \(count) blobs of \(ByteSize.format(UInt64(blobSize))), concurrency \(concurrency)") }
        let digests = (0..<count).map { BlobSource(seed: seed &+ UInt64($0), size: blobSize).digest() }
        let sampler = serverPid.map { MemorySampler(pid: $0) }
        let sampling = sampler.map { sampler in Task { await sampler.run() } }

        let pullBase = pullUrl.map { MasterLocation.normalize($0, scheme: "http") } ?? base
        var push: PhaseResult?
        if phase != .pull {
            push = try await Phase.run(name: "push", count: count, concurrency: concurrency, bytesEach: blobSize) { i in
                try await Self.push(http: http, base: base, repository: repository, source: BlobSource(seed: seed &+ UInt64(i), size: blobSize), digest: digests[i])
            }
        }
        if let tag, phase != .pull {
            try await Self.tagImage(http: http, base: base, repository: repository, tag: tag, layers: digests, size: blobSize)
        }
        var pull: PhaseResult?
        if phase != .push {
            pull = try await Phase.run(name: "pull", count: count, concurrency: concurrency, bytesEach: blobSize) { i in
                try await Self.pull(http: http, base: pullBase, repository: repository, digest: digests[i], size: blobSize)
            }
        }
        sampling?.cancel()
        let peak = await sampler?.peak
        try await http.shutdown()
        report(push: push, pull: pull, peak: peak, base: base, blobSize: blobSize)
    }

    private func report(push: PhaseResult?, pull: PhaseResult?, peak: Int?, base: String, blobSize: Int) {
        if json {
            let result = Result(
                url: base, blobs: count, blobBytes: blobSize, concurrency: concurrency,
                pushMBps: push?.megabytesPerSecond ?? 0, pushP50Ms: push?.percentile(0.5) ?? 0, pushP99Ms: push?.percentile(0.99) ?? 0,
                pullMBps: pull?.megabytesPerSecond ?? 0, pullP50Ms: pull?.percentile(0.5) ?? 0, pullP99Ms: pull?.percentile(0.99) ?? 0,
                serverPeakRSSBytes: peak, pushStartedAt: push?.startedAt, pushEndedAt: push?.endedAt,
                pullStartedAt: pull?.startedAt, pullEndedAt: pull?.endedAt, pushLatenciesMs: push?.latenciesMs, pullLatenciesMs: pull?.latenciesMs)
            print(String(decoding: (try? WireJSON.encoder(pretty: true).encode(result)) ?? Data(), as: UTF8.self))
        } else {
            if let push { print(push.line + "  (\(count) digests accepted)") }
            if let pull { print(pull.line + "  (\(count) digests verified)") }
            if let peak { print("server peak RSS     \(ByteSize.format(UInt64(peak)))") }
        }
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
    }

    /// Pushes a config blob and an OCI image manifest naming `layers`, tagged `tag`.
    static func tagImage(http: HTTPClient, base: String, repository: String, tag: String, layers: [Digest], size: Int) async throws {
        let config = Array("{\"speedy-bench\":\"\(tag)\"}".utf8)
        var post = HTTPClientRequest(url: "\(base)/v2/\(repository)/blobs/uploads/?digest=\(Digest.of(config))")
        post.method = .POST
        post.body = .bytes(ByteBuffer(bytes: config))
        var posted = try await http.execute(post, timeout: .seconds(60))
        _ = try await posted.body.collect(upTo: 1 << 20)
        // A registry that takes no body on the POST (docker-registry) starts an upload: finish it.
        if posted.status == .accepted, let location = posted.headers.first(name: "Location") {
            let target = location.hasPrefix("http") ? location : base + location
            var put = HTTPClientRequest(url: target + (target.contains("?") ? "&" : "?") + "digest=\(Digest.of(config))")
            put.method = .PUT
            put.headers.add(name: "Content-Type", value: "application/octet-stream")
            put.body = .bytes(ByteBuffer(bytes: config))
            posted = try await http.execute(put, timeout: .seconds(60))
            _ = try await posted.body.collect(upTo: 1 << 20)
        }
        guard posted.status == .created else { throw BenchError(description: "config push answered \(posted.status)") }
        let layerList = layers.map { "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"\($0)\",\"size\":\(size)}" }
        let manifest = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
            + "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"\(Digest.of(config))\",\"size\":\(config.count)},"
            + "\"layers\":[\(layerList.joined(separator: ","))]}"
        var put = HTTPClientRequest(url: "\(base)/v2/\(repository)/manifests/\(tag)")
        put.method = .PUT
        put.headers.add(name: "Content-Type", value: "application/vnd.oci.image.manifest.v1+json")
        put.body = .bytes(ByteBuffer(string: manifest))
        let response = try await http.execute(put, timeout: .seconds(60))
        guard response.status == .created else { throw BenchError(description: "manifest push answered \(response.status)") }
    }

    /// Pushes one blob as docker does; a 429 or 503 (rate or memory limit) is waited out as its
    /// Retry-After says and the push started again, as clients do, up to ten times.
    static func push(http: HTTPClient, base: String, repository: String, source: BlobSource, digest: Digest) async throws {
        for attempt in 1...10 {
            do {
                return try await pushOnce(http: http, base: base, repository: repository, source: source, digest: digest)
            } catch let refused as Refused where attempt < 10 {
                try await Task.sleep(for: .seconds(refused.retryAfter))
            }
        }
    }

    /// A limit said "come back later".
    struct Refused: Error {
        var retryAfter: Int
        static func check(_ response: HTTPClientResponse) throws {
            guard response.status == .tooManyRequests || response.status == .serviceUnavailable else { return }
            throw Refused(retryAfter: min(10, max(1, response.headers.first(name: "Retry-After").flatMap { Int($0) } ?? 1)))
        }
    }

    static func pushOnce(http: HTTPClient, base: String, repository: String, source: BlobSource, digest: Digest) async throws {
        var start = HTTPClientRequest(url: "\(base)/v2/\(repository)/blobs/uploads/")
        start.method = .POST
        start.headers.add(name: "Content-Length", value: "0")
        let started = try await http.execute(start, timeout: .seconds(60))
        _ = try await started.body.collect(upTo: 1 << 20)
        try Refused.check(started)
        guard started.status == .accepted, let location = started.headers.first(name: "Location") else {
            throw BenchError(description: "POST upload answered \(started.status)")
        }
        let absolute = location.hasPrefix("http") ? location : base + location
        var patch = HTTPClientRequest(url: absolute)
        patch.method = .PATCH
        patch.headers.add(name: "Content-Type", value: "application/octet-stream")
        patch.body = .stream(source.pieces(), length: .known(Int64(source.size)))
        let patched = try await http.execute(patch, timeout: .seconds(300))
        let answer = try await patched.body.collect(upTo: 1 << 20)
        try Refused.check(patched)
        guard patched.status == .accepted || patched.status == .noContent || patched.status == .created else {
            throw BenchError(description: "PATCH answered \(patched.status): \(String(buffer: answer))")
        }
        let next = patched.headers.first(name: "Location").map { $0.hasPrefix("http") ? $0 : base + $0 } ?? absolute
        var put = HTTPClientRequest(url: next + (next.contains("?") ? "&" : "?") + "digest=\(digest)")
        put.method = .PUT
        put.headers.add(name: "Content-Length", value: "0")
        let done = try await http.execute(put, timeout: .seconds(60))
        let body = try await done.body.collect(upTo: 1 << 20)
        try Refused.check(done)
        guard done.status == .created else {
            throw BenchError(description: "PUT answered \(done.status): \(String(buffer: body))")
        }
    }

    static func pull(http: HTTPClient, base: String, repository: String, digest: Digest, size: Int) async throws {
        let request = HTTPClientRequest(url: "\(base)/v2/\(repository)/blobs/\(digest)")
        let response = try await http.execute(request, timeout: .seconds(300))
        guard response.status == .ok else { throw BenchError(description: "GET \(digest) answered \(response.status)") }
        var hasher = SHA256Hasher()
        var received = 0
        for try await piece in response.body {
            hasher.update(piece)
            received += piece.readableBytes
        }
        guard received == size, hasher.finalize() == digest else {
            throw BenchError(description: "blob \(digest) came back wrong (\(received) bytes)")
        }
    }
}

/// A blob of `size` pseudo-random bytes from `seed`, made on the fly in 1 MiB pieces.
struct BlobSource: Sendable {
    let seed: UInt64
    let size: Int
    static let piece = 1 << 20

    func piece(_ index: Int) -> ByteBuffer {
        let count = min(Self.piece, size - index * Self.piece)
        var state = seed &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(index) &* 0xBF58_476D_1CE4_E5B9
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            let words = count / 8
            let out = raw.bindMemory(to: UInt64.self)
            for i in 0..<words {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                out[i] = z ^ (z >> 27)
            }
            for i in (words * 8)..<count { raw[i] = UInt8(truncatingIfNeeded: state >> (i % 8)) }
            return count
        }
        return buffer
    }

    var pieceCount: Int { (size + Self.piece - 1) / Self.piece }

    func digest() -> Digest {
        var hasher = SHA256Hasher()
        for i in 0..<pieceCount { hasher.update(piece(i)) }
        return hasher.finalize()
    }

    /// The pieces, made one at a time as the upload asks for them.
    func pieces() -> Pieces { Pieces(source: self) }

    struct Pieces: AsyncSequence, Sendable {
        let source: BlobSource

        struct AsyncIterator: AsyncIteratorProtocol {
            let source: BlobSource
            var index = 0

            mutating func next() async -> ByteBuffer? {
                guard index < source.pieceCount else { return nil }
                defer { index += 1 }
                return source.piece(index)
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(source: source) }
    }
}

/// Samples a process's resident memory (VmRSS) every 100 ms and keeps the peak.
actor MemorySampler {
    let pid: Int32
    private(set) var peak: Int?

    init(pid: Int32) { self.pid = pid }

    func run() async {
        while !Task.isCancelled {
            if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
                let kib = Int(line.split(separator: " ").dropFirst().first ?? "")
            {
                peak = max(peak ?? 0, kib * 1024)
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}


import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SpeedyCore

/// Metadata operations per second through a registry's OCI API: what a fleet of clients checking
/// for layers and resolving tags asks of the metaservers, with no blob bytes moved.
struct MetadataBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metadata",
        abstract: "Blob HEADs, manifest GETs by tag and tag lists per second through a registry's OCI API.",
        discussion: """
            First pushes --blobs small blobs and an image tagged t0…t(N-1) (--tags) into --repository, \
            then runs --count of each operation with --concurrency clients: HEAD of a blob, GET of a \
            manifest by tag (its digest checked), GET of the tag list (n=100). With several --url, \
            the clients are spread over them (imageservers of one cluster, say).
            """
    )

    @Option(help: ArgumentHelp("Registry base URLs, comma-separated.", valueName: "url,url"))
    var url = "http://127.0.0.1:6788"

    @Option(help: "Repository to use.")
    var repository = "bench/meta"

    @Option(help: "Blobs to push and HEAD.")
    var blobs = 20

    @Option(help: "Tags to point at the image.")
    var tags = 50

    @Option(help: "Operations of each kind.")
    var count = 2000

    @Option(help: "Concurrent clients.")
    var concurrency = 16

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Result: Codable {
        var urls: [String]
        var concurrency: Int
        var operations: [Operation]

        struct Operation: Codable {
            var name: String
            var count: Int
            var perSecond: Double
            var p50Ms: Double
            var p99Ms: Double
        }
    }

    func validate() throws {
        guard (1...10_000).contains(blobs), (1...10_000).contains(tags) else { throw ValidationError("--blobs and --tags must be 1 to 10000") }
        guard count > 0, (1...1000).contains(concurrency) else { throw ValidationError("--count must be positive, --concurrency 1 to 1000") }
    }

    func run() async throws {
        let bases = url.split(separator: ",").map { MasterLocation.normalize(String($0), scheme: "http") }
        var config = HTTPClient.Configuration()
        config.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, concurrency))
        config.timeout = .init(connect: .seconds(5), read: .seconds(60))
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        if !json { print("speedy-bench metadata: \(bases.joined(separator: ", ")), \(blobs) blobs, \(tags) tags, concurrency \(concurrency)") }

        let results: [PhaseResult]
        do {
            results = try await measure(http: http, bases: bases)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
        report(results, bases: bases)
    }

    /// Sets up the repository, then runs each operation `count` times.
    private func measure(http: HTTPClient, bases: [String]) async throws -> [PhaseResult] {
        let repository = self.repository
        let digests = try await setUp(http: http, base: bases[0])
        // Each tag names its own image (its config differs): what each must come back as.
        var expected: [Digest] = []
        for n in 0..<tags {
            expected.append(Digest.of(Array(try await Self.expect(http, "\(bases[0])/v2/\(repository)/manifests/t\(n)", method: .GET).readableBytesView)))
        }
        let manifestDigests = expected
        let tagCount = tags
        let phases: [(String, @Sendable (Int) async throws -> Void)] = [
            ("blob HEAD", { i in
                _ = try await Self.expect(http, "\(bases[i % bases.count])/v2/\(repository)/blobs/\(digests[i % digests.count])", method: .HEAD)
            }),
            ("manifest GET by tag", { i in
                let body = try await Self.expect(http, "\(bases[i % bases.count])/v2/\(repository)/manifests/t\(i % tagCount)", method: .GET)
                guard Digest.of(Array(body.readableBytesView)) == manifestDigests[i % tagCount] else { throw BenchError("manifest t\(i % tagCount) came back wrong") }
            }),
            ("tag list", { i in
                _ = try await Self.expect(http, "\(bases[i % bases.count])/v2/\(repository)/tags/list?n=100", method: .GET)
            }),
        ]
        var results: [PhaseResult] = []
        for (name, body) in phases {
            results.append(try await Phase.run(name: name, count: count, concurrency: concurrency, bytesEach: 0, body))
        }
        return results
    }

    private func report(_ results: [PhaseResult], bases: [String]) {
        let operations = results.map {
            Result.Operation(name: $0.name, count: $0.operations, perSecond: Double($0.operations) / $0.seconds, p50Ms: $0.percentile(0.5), p99Ms: $0.percentile(0.99))
        }
        if json {
            let result = Result(urls: bases, concurrency: concurrency, operations: operations)
            print(String(decoding: (try? WireJSON.encoder(pretty: true).encode(result)) ?? Data(), as: UTF8.self))
            return
        }
        for op in operations {
            let f = { (x: Double) in ByteSize.formatDecimal(x, places: 1) }
            print("\(op.name.padding(20)) \(String(op.count).padding(6)) ops  \(f(op.perSecond).padding(8)) ops/s  p50 \(f(op.p50Ms)) ms  p99 \(f(op.p99Ms)) ms")
        }
    }

    /// Every blob's size: the image's layer descriptors carry one size.
    static let blobSize = 96

    /// Pushes the blobs and the image, and tags it t0…; returns the blobs' digests.
    private func setUp(http: HTTPClient, base: String) async throws -> [Digest] {
        var digests: [Digest] = []
        for n in 0..<blobs {
            let blob = Array("speedy-bench metadata blob \(n) \(repository)".padding(Self.blobSize).utf8.prefix(Self.blobSize))
            let digest = Digest.of(blob)
            // POST then PUT with the bytes: the monolithic upload every registry takes.
            var post = HTTPClientRequest(url: "\(base)/v2/\(repository)/blobs/uploads/")
            post.method = .POST
            post.headers.add(name: "Content-Length", value: "0")
            let started = try await http.execute(post, timeout: .seconds(60))
            _ = try await started.body.collect(upTo: 1 << 20)
            guard started.status == .accepted, let location = started.headers.first(name: "Location") else {
                throw BenchError("upload start answered \(started.status)")
            }
            let target = (location.hasPrefix("http") ? location : base + location)
            var put = HTTPClientRequest(url: target + (target.contains("?") ? "&" : "?") + "digest=\(digest)")
            put.method = .PUT
            put.headers.add(name: "Content-Type", value: "application/octet-stream")
            put.body = .bytes(ByteBuffer(bytes: blob))
            let response = try await http.execute(put, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .created else { throw BenchError("blob push answered \(response.status)") }
            digests.append(digest)
        }
        for n in 0..<tags {
            try await RegistryBench.tagImage(http: http, base: base, repository: repository, tag: "t\(n)", layers: digests, size: Self.blobSize)
        }
        return digests
    }

    /// Sends a request, checks it answered 200, and returns its body.
    static func expect(_ http: HTTPClient, _ url: String, method: HTTPMethod) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        request.headers.add(name: "Accept", value: "application/vnd.oci.image.manifest.v1+json")
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 4 << 20)
        guard response.status == .ok else { throw BenchError("\(method) \(url) answered \(response.status)") }
        return body
    }

    struct BenchError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

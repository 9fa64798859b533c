import Foundation
@testable import ImageServer
import NIOCore
import SpeedyCore
import SpeedyTestSupport
import Testing

/// Every parser of request input, fed random and mutated input: none may trap, and what parses
/// must be consistent. Runs are bounded and seeded (a failure names its seed and input); set
/// SPEEDY_FUZZ_ITERATIONS for a longer run (docs/security.md records one).
@Suite("Request parser fuzzing")
struct RequestParserFuzzTests {
    static let iterations = ProcessInfo.processInfo.environment["SPEEDY_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 3000

    /// Pieces that hit parsers' edges: huge numbers, separators, quotes, NUL, non-ASCII.
    static let tokens = [
        "18446744073709551615", "18446744073709551616", "9223372036854775807", "-1", "0", "-", "/", ":", ",", "*", "**", "..",
        "{", "}", "[", "]", "\"", "\\", "\u{0}", "é", "sha256:", "bytes=", "bytes ", "%00", String(repeating: "a", count: 300),
        "1e999", "null", "true",
    ]

    /// Mutates `seed`: byte flips, inserted tokens, deletions, duplicated slices.
    static func mutate(_ seed: String, _ generator: inout SeededGenerator) -> String {
        var bytes = Array(seed.utf8)
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            switch Int.random(in: 0..<4, using: &generator) {
            case 0 where !bytes.isEmpty:
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            case 1:
                let at = Int.random(in: 0...bytes.count, using: &generator)
                bytes.insert(contentsOf: Array(tokens.randomElement(using: &generator)!.utf8), at: at)
            case 2 where !bytes.isEmpty:
                let start = Int.random(in: 0..<bytes.count, using: &generator)
                bytes.removeSubrange(start..<min(bytes.count, start + Int.random(in: 1...8, using: &generator)))
            default:
                guard !bytes.isEmpty else { continue }
                let start = Int.random(in: 0..<bytes.count, using: &generator)
                let slice = bytes[start..<min(bytes.count, start + Int.random(in: 1...16, using: &generator))]
                bytes.insert(contentsOf: slice, at: Int.random(in: 0...bytes.count, using: &generator))
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `iterations` inputs: mutations of the seeds, and now and then pure noise.
    static func inputs(_ seeds: [String], seed: UInt64) -> [String] {
        var generator = SeededGenerator(seed: seed)
        return (0..<iterations).map { i in
            if i % 10 == 9 {
                let count = Int.random(in: 0...64, using: &generator)
                return String(decoding: (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }, as: UTF8.self)
            }
            return mutate(seeds[i % seeds.count], &generator)
        }
    }

    @Test func pathsAndNames() {
        let seeds = [
            "/v2/", "/v2/_catalog", "/v2/team/app/manifests/v1", "/v2/a/b/c/blobs/sha256:" + String(repeating: "0", count: 64),
            "/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/0b4c", "/v2/x/tags/list", "/v2/x/referrers/sha256:00",
            "/v2/x/_speedy/chunks/sha256:00",
        ]
        for input in Self.inputs(seeds, seed: 1) {
            guard let path = OCIPath(path: input) else { continue }
            if let name = path.name { _ = OCINames.isValidRepository(name) }
            _ = path.allowedMethods
            if case .manifest(_, let reference) = path { _ = OCINames.isValidTag(reference) || Digest(parsing: reference) != nil }
        }
    }

    @Test func digests() {
        let seeds = ["sha256:" + String(repeating: "a", count: 64), "sha512:" + String(repeating: "0", count: 128), "sha256:abc"]
        for input in Self.inputs(seeds, seed: 2) {
            if let digest = Digest(parsing: input) {
                #expect(Digest(parsing: digest.description) == digest, "\(input)")
            }
        }
    }

    @Test func byteRangesStayInsideTheBlob() {
        let seeds = ["bytes=0-99", "bytes=-5", "bytes=10-", "bytes=5-1", "bytes=0-18446744073709551615"]
        var generator = SeededGenerator(seed: 3)
        for input in Self.inputs(seeds, seed: 3) {
            let length = UInt64.random(in: 0...1_000_000, using: &generator)
            if case .partial(let range) = ByteRangeRequest.resolve(input, length: length) {
                #expect(range.upperBound < length, "\(input) on \(length)")
            }
        }
    }

    @Test func contentRangesAndPageSizes() {
        for input in Self.inputs(["0-99", "bytes 0-18446744073709551615/*", "5-5/10"], seed: 4) {
            if let range = UploadContentRange(parsing: input) { #expect(range.end >= range.start) }
        }
        for input in Self.inputs(["100", "0", "99999999999999999999999", "-1"], seed: 5) {
            if let n = try? RegistryAPI.pageSize(Substring(input)) { #expect((0...RegistryAPI.largestPage).contains(n)) }
        }
    }

    /// `X-Speedy-Chain`: what parses is at most ``ReplicationChain/maxMembers`` distinct
    /// `HOST:PORT`s with a real port and no URL syntax in the host, and formats back the same.
    @Test func replicationChains() {
        let seeds = ["10.0.0.1:7657", "a:1,b:2,c:3", "[::1]:7657,10.0.0.2:7658", "", "h:0", "a:1,a:1", "x:1,y:2,", "u@h:1", "h/1:2", "h?x:1", "h#:2"]
        for input in Self.inputs(seeds, seed: 9) {
            guard let tail = ReplicationChain.parseTail(input) else { continue }
            #expect(tail.count <= ReplicationChain.maxMembers, "\(input)")
            #expect(Set(tail).count == tail.count, "\(input)")
            for member in tail {
                let address = HostPort(parsing: member)
                #expect(address != nil && address!.port > 0 && address!.port <= 65535, "\(input)")
                #expect(!member.contains(where: { "/@?#, ".contains($0) }), "\(input)")
            }
            #expect(ReplicationChain.parseTail(tail.joined(separator: ",")) == tail, "\(input)")
        }
        // Rotation: every member heads in turn, and the order is kept.
        let members = ["a:1", "b:2", "c:3"]
        #expect((0..<6).map { ReplicationChain.rotated(members, by: UInt64($0)).members.first! } == ["a:1", "b:2", "c:3", "a:1", "b:2", "c:3"])
        #expect(ReplicationChain.rotated(members, by: 4).members == ["b:2", "c:3", "a:1"])
        #expect(ReplicationChain.rotated(members, by: UInt64.max).members.count == 3)
        #expect(ReplicationChain.rotated([], by: 7).members.isEmpty)
    }

    @Test func manifests() {
        let layer = "sha256:" + String(repeating: "1", count: 64)
        let seeds = [
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(layer)","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(layer)","size":3}]}"#,
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"digest":"\#(layer)","size":3}]}"#,
            #"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"#,
        ]
        for input in Self.inputs(seeds, seed: 6) {
            for type in [nil, "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"] {
                _ = try? ManifestParser.parse(Array(input.utf8), contentType: type)
            }
        }
    }

    @Test func accessFilesUserFilesAndCredentials() {
        for input in Self.inputs(["admin ** *\n* team/* pull,push\nanonymous public/** pull\n"], seed: 7) {
            if let policy = try? AccessPolicy(parsing: input) { _ = policy.actions(for: "admin", on: "team/app") }
        }
        for input in Self.inputs(["team/*/x", "**", "a*b*c"], seed: 8) {
            _ = RepositoryPattern(input)?.matches("team/app/x")
        }
        for input in Self.inputs(["alice:$2y$10$" + String(repeating: "a", count: 53)], seed: 9) { _ = try? UserFile(parsing: input) }
        for input in Self.inputs(["Basic YWxpY2U6cGFzcw==", "Basic", "Basic ===="], seed: 10) { _ = BasicCredentials(header: input) }
    }

    /// The JSON bodies the internal APIs accept: mutated, they decode or throw, never trap.
    @Test func wireTypes() throws {
        let chunk = ChunkRef(group: 1, fileId: 2, length: 3, crc: 4)
        let record = BlobRecord(digest: Digest(parsing: "sha256:" + String(repeating: "1", count: 64))!, size: 3, chunks: [chunk])
        let encoder = WireJSON.encoder()
        let seeds = [
            String(decoding: try encoder.encode(record), as: UTF8.self),
            String(decoding: try encoder.encode(ChunkListing(group: 1, chunks: [ChunkInfo(fileId: 1, length: 2, crc: 3)], nextAfter: 9)), as: UTF8.self),
            String(decoding: try encoder.encode(FileIdLease(start: 1, count: 1000)), as: UTF8.self),
            String(decoding: try encoder.encode(UploadLimits(perRepository: 1, perClient: 2)), as: UTF8.self),
        ]
        let decoder = WireJSON.decoder()
        for input in Self.inputs(seeds, seed: 11) {
            let data = Data(input.utf8)
            _ = try? decoder.decode(BlobRecord.self, from: data)
            _ = try? decoder.decode(ChunkListing.self, from: data)
            _ = try? decoder.decode(FileIdLease.self, from: data)
            _ = try? decoder.decode(UploadSession.self, from: data)
            _ = try? decoder.decode(HeartbeatReport.self, from: data)
            _ = try? decoder.decode(ClusterSnapshot.self, from: data)
            _ = try? decoder.decode(UploadLimits.self, from: data)
        }
    }
}

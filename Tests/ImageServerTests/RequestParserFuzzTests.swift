import Foundation
@testable import ImageServer
import NIOCore
import ParserFuzzing
import SpeedyCore
import SpeedyTestSupport
import Testing

/// Every parser of request input, fed its fuzz target's corpus and seeded mutations of it: none
/// may trap, and what parses must be consistent (the checks are the ``FuzzTarget``s that
/// `Tests/Fuzz/run` hands to libFuzzer). Runs are bounded and seeded (a failure names its input);
/// set SPEEDY_FUZZ_ITERATIONS for a longer run.
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

    /// The corpus of a libFuzzer target (`Tests/Fuzz/corpus/<name>/`): seeds, what long runs kept,
    /// and every input that once found a bug (`regression-…`).
    static func corpus(_ target: FuzzTarget) throws -> [(name: String, bytes: [UInt8])] {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/\(target.name)")
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map { name in
            (name, Array(try Data(contentsOf: directory.appendingPathComponent(name))))
        }
    }

    /// Every input of every target's corpus passes its check: what libFuzzer once found stays fixed.
    @Test(arguments: FuzzTarget.all.map(\.name))
    func theCorpusPasses(_ name: String) async throws {
        let target = try #require(FuzzTarget.named(name))
        let corpus = try Self.corpus(target)
        #expect(!corpus.isEmpty, "Tests/Fuzz/corpus/\(name) is empty")
        for input in corpus {
            let problem = await target.run(input.bytes)
            #expect(problem == nil, "corpus/\(name)/\(input.name): \(problem ?? "")")
        }
    }

    /// Each target on `iterations` seeded mutations of its corpus: the check libFuzzer runs, here
    /// without its instrumentation, so every `swift test` fuzzes a little.
    @Test(arguments: FuzzTarget.all.map(\.name))
    func mutationsOfTheCorpusPass(_ name: String) async throws {
        let target = try #require(FuzzTarget.named(name))
        let seeds = try Self.corpus(target).map { String(decoding: $0.bytes, as: UTF8.self) }
        for (i, input) in Self.inputs(seeds, seed: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) } & 0xffff)).enumerated() {
            let bytes = Array(input.utf8)
            if let problem = await target.run(bytes) {
                Issue.record("\(name) input \(i) \(input.debugDescription): \(problem)")
                return
            }
        }
    }

    /// The token corpus holds tokens that pass the check (`valid-…`), so the fuzzer starts from
    /// the code past the signature, not only from the refusals before it.
    @Test func theTokenCorpusHasTokensThatVerify() async throws {
        let valid = try Self.corpus(try #require(FuzzTarget.named("token"))).filter { $0.name.hasPrefix("valid-") }
        #expect(valid.count >= 2)
        for input in valid {
            #expect(await FuzzTarget.tokenVerifies(String(decoding: input.bytes, as: UTF8.self)), "\(input.name)")
        }
    }

    /// Every target has a corpus directory, and every corpus directory a target.
    @Test func everyCorpusHasItsTarget() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus")
        let directories = try FileManager.default.contentsOfDirectory(atPath: root.path).sorted()
        #expect(directories == FuzzTarget.all.map(\.name).sorted())
    }

    @Test func pageSizes() {
        for input in Self.inputs(["100", "0", "99999999999999999999999", "-1"], seed: 5) {
            if let n = try? RegistryAPI.pageSize(Substring(input)) { #expect((0...RegistryAPI.largestPage).contains(n)) }
        }
    }

    /// A chain's rotation: every member heads in turn, and the order is kept.
    @Test func replicationChainsRotate() {
        let members = ["a:1", "b:2", "c:3"]
        #expect((0..<6).map { ReplicationChain.rotated(members, by: UInt64($0)).members.first! } == ["a:1", "b:2", "c:3", "a:1", "b:2", "c:3"])
        #expect(ReplicationChain.rotated(members, by: 4).members == ["b:2", "c:3", "a:1"])
        #expect(ReplicationChain.rotated(members, by: UInt64.max).members.count == 3)
        #expect(ReplicationChain.rotated([], by: 7).members.isEmpty)
    }
}

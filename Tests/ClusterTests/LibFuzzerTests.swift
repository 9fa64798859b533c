import Foundation
import ParserFuzzing
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// `Tests/Fuzz/run`: libFuzzer, with coverage and AddressSanitizer, on every parser of request
    /// input for a few seconds each. A process suite because the build and the fuzzing take both
    /// cores for a minute or two, which would starve a cluster started beside them.
    @Suite("libFuzzer on the request parsers", .serialized)
    struct LibFuzzerTests {
        static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

        #if os(Linux)
        static let hasLibFuzzer = true
        #else
        static let hasLibFuzzer = false
        #endif

        @Test(.enabled(if: hasLibFuzzer, "libFuzzer comes with the swift.org toolchain on Linux"), .timeLimit(.minutes(10)))
        func everyTargetRunsAndFindsNothing() async throws {
            var environment = ProcessInfo.processInfo.environment.filter { ["PATH", "HOME", "TMPDIR"].contains($0.key) }
            if environment["PATH"] == nil { environment["PATH"] = "/usr/bin:/bin" }
            let run = try await SpawnedProgram.run("/bin/bash", [Self.repositoryRoot + "/Tests/Fuzz/run", "--seconds", "5"], environment: environment)
            #expect(run.status == 0, "\(run.output)")
            for target in FuzzTarget.all {
                let line = run.output.split(separator: "\n").first { $0.hasPrefix("\(target.name): ") }
                #expect(line?.hasSuffix("nothing found") == true, "\(target.name): \(line.map(String.init) ?? "did not run")")
                // It ran for real: at least a hundred inputs (the slowest, the token check, makes about 120 a
                // second in a 5 s run that includes its start, 2,700 a second in a long one).
                let runs = line.flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Int($0) } ?? 0
                #expect(runs >= 100, "\(target.name) ran \(runs) inputs")
            }
        }
    }
}

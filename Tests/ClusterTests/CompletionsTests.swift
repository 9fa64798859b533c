import Foundation
import Testing

/// The completion scripts in completions/ are what the argument parsers generate today: change an
/// option without regenerating them and this fails, naming the command that rewrites them.
@Suite("Shell completions")
struct CompletionsTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    static let files: [(tool: String, shell: String, file: String)] = ["speedy", "chunktool", "transfer", "speedy-console"].flatMap { tool in
        [(tool, "bash", "\(tool).bash"), (tool, "zsh", "_\(tool)"), (tool, "fish", "\(tool).fish")]
    }

    @Test(arguments: files.map { "\($0.tool) \($0.shell) \($0.file)" })
    func completionScriptIsUpToDate(_ entry: String) async throws {
        let parts = entry.split(separator: " ").map(String.init)
        let (tool, shell, file) = (parts[0], parts[1], parts[2])
        let generated = try await ClusterHarness.run(ClusterHarness.binDirectory + "/" + tool, ["--generate-completion-script", shell])
        #expect(generated.status == 0)
        let committed = try String(contentsOfFile: Self.root + "/completions/" + file, encoding: .utf8)
        #expect(
            generated.output == committed,
            "completions/\(file) is out of date: run `\(tool) --generate-completion-script \(shell) > completions/\(file)`")
    }
}

import ArgumentParser
import Foundation
import SpeedyCore

/// The exit codes every Speedy tool keeps, which scripts rely on.
public enum ToolExit {
    /// All fine.
    public static let fine = ExitCode(0)
    /// The command ran and found problems.
    public static let problems = ExitCode(1)
    /// The command could not run (bad usage, unreachable master, refused request).
    public static let couldNotRun = ExitCode(2)

    /// Runs a root command with the contract's exit codes: ArgumentParser's own usage errors
    /// (which would exit 64) exit 2.
    public static func main<Root: AsyncParsableCommand>(_ root: Root.Type) async {
        do {
            var command = try Root.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = Root.exitCode(for: error)
            if code.rawValue == 0 { Root.exit(withError: error) }
            FileHandle.standardError.write(Data((Root.fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code.rawValue == 1 ? 1 : 2)
        }
    }
}

/// Fails the command with exit status 2 and `message` on standard error.
public func couldNotRun(_ message: String) -> ExitCode {
    let tool = (CommandLine.arguments.first ?? "speedy").split(separator: "/").last.map(String.init) ?? "speedy"
    FileHandle.standardError.write(Data((tool + ": " + message + "\n").utf8))
    return ToolExit.couldNotRun
}

/// Prints `value` as pretty JSON on standard output.
public func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try WireJSON.encoder(pretty: true).encode(value), as: UTF8.self))
}

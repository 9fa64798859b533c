import ArgumentParser
import Foundation
import SpeedyCore

/// `chunktool`: the operator's command line for a Speedy cluster.
///
/// Exit codes (scripts rely on them): 0 fine, 1 problems found, 2 could not run.
@main
struct ChunkTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chunktool",
        abstract: "Inspect and administer a Speedy cluster.",
        discussion: """
            The master is --master URL, else $SPEEDY_MASTER, else http://127.0.0.1:8099. \
            Exit status: 0 all fine, 1 problems found, 2 could not run.
            """,
        subcommands: [Status.self, Verify.self, Repair.self]
    )

    /// ArgumentParser's own usage errors exit 64; the contract says 2 for "could not run".
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = exitCode(for: error)
            if code == .success || code.rawValue == 0 {
                exit(withError: error)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code == .validationFailure ? 2 : (code.rawValue == 1 ? 1 : 2))
        }
    }
}

/// Options every subcommand that talks to the master shares.
struct MasterOptions: ParsableArguments {
    @Option(help: "Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).")
    var master: String?

    var url: String { MasterLocation.resolve(flag: master) }
    var client: MasterClient { MasterClient(baseURL: url) }

    /// The cluster snapshot, or exit status 2 with the reason.
    func snapshot() async throws -> ClusterSnapshot {
        do {
            return try await client.snapshot()
        } catch {
            throw couldNotRun("\(error)")
        }
    }

    /// One group of the snapshot, or exit status 2 when the master does not know it.
    func group(_ id: UInt32) async throws -> GroupSnapshot {
        guard let group = try await snapshot().groups.first(where: { $0.id == id }) else {
            throw couldNotRun("group \(id) is not known to the master at \(url)")
        }
        return group
    }
}

/// Fails the command with exit status 2 and a message on standard error.
func couldNotRun(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("chunktool: " + message + "\n").utf8))
    return ExitCode(2)
}

import CommandLineSupport
import ArgumentParser
import ToolSupport

/// `chunktool`: the operator's command line for a Speedy cluster.
///
/// Exit codes (scripts rely on them): 0 fine, 1 problems found, 2 could not run.
@main
struct ChunkTool: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chunktool",
        abstract: "Inspect and administer a Speedy cluster.",
        discussion: """
            The master is --master URL, else $SPEEDY_MASTER, else http://127.0.0.1:8099. Every \
            command takes --json for scripts. Exit status: 0 all fine, 1 problems found, 2 could \
            not run. The recovery runbook is docs/recovery.md.
            """,
        subcommands: [Status.self, GroupCommand.self, ServerCommand.self, Verify.self, Repair.self, Fsck.self, GarbageCollect.self, Retention.self, Sync.self, Rebalance.self]
    )

    static func main() async { await ToolExit.main(Self.self) }
}

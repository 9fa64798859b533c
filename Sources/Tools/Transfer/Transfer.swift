import CommandLineSupport
import ArgumentParser
import Foundation
import SpeedyClients
import SpeedyCore
import ToolSupport

/// `transfer`: fills a replacement chunkserver from a healthy replica of its group, then makes it
/// a full member. The seed's transfer role, as a command a script can run.
@main
struct Transfer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transfer",
        abstract: "Stream a healthy replica of a group into a new (replacement) chunkserver.",
        discussion: """
            Start the new chunkserver first, empty, in the group: speedy chunkserver --group G \
            --listen HOST:PORT --data DIR. transfer then:
              1. waits for it to appear in the group and sets it TRANSFERRING: imageservers write \
            every new chunk of the group to it as well, but read nothing from it;
              2. copies every chunk of a healthy member (--from, else the least busy) that it lacks, \
            each checked against its CRC, with a progress bar (MB/s, ETA) and --rate to spare a live \
            cluster; chunks it already holds are skipped, so an interrupted transfer resumes where \
            it stopped;
              3. repeats the copy until a pass finds nothing new after --settle seconds, so writes \
            that raced with step 1 are copied too;
              4. verifies that the new member's listing holds every chunk of the source with the \
            same length and CRC;
              5. removes the dead member it replaces (--replaces, else the member the master \
            fenced OFFLINE for this replacement when it began, if it is still silent) and has the \
            master mark the new one RW.
            Exit status 0 when the new member is RW, 1 when chunks could not be copied or verified \
            (it stays TRANSFERRING; run transfer again), 2 when it could not run.
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "The group to fill.")
    var group: UInt32

    @Option(help: "HOST:PORT of the new chunkserver.")
    var to: String

    @Option(help: "Server id of the member to copy from (default: the least busy RW member).")
    var from: String?

    @Option(help: "Server id of the dead member to remove at the end (default: the one fenced for this replacement, if still silent).")
    var replaces: String?

    @Option(help: "Copy at most this many MB/s (0: no limit).")
    var rate: Double = 0

    @Option(help: "Chunks copied at once.")
    var concurrency: Int = 4

    @Option(help: "Seconds to wait for the new chunkserver to join the group.")
    var wait: Double = 30

    @Option(help: "Seconds the new member must have been TRANSFERRING before the last pass: longer than an imageserver may write from an old cluster map (5 s).")
    var settle: Double = 6

    @Flag(help: "Print the result as JSON.")
    var json = false

    func validate() throws {
        guard HostPort(parsing: to) != nil else { throw ValidationError("--to must be HOST:PORT, not '\(to)'") }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64") }
    }

    static func main() async { await ToolExit.main(Self.self) }

    func run() async throws {
        var job = try await TransferJob.prepare(self)
        let reporter = JobReporter(kind: "transfer", target: "group \(group): \(job.source.id) to \(job.destination.id)", client: options.client)
        job.reporter = reporter
        let report = try await reporter.endingOnFailure { try await job.run() }
        await reporter.end(
            report.complete ? .finished : .failed,
            message: "\(report.chunksCopied) chunks, \(ByteSize.format(report.bytesCopied)) copied" + (report.complete ? "" : "; not complete"))
        if json {
            try printJSON(report)
        } else {
            print(report.text)
        }
        if !report.complete { throw ToolExit.problems }
    }
}

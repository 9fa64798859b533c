import CommandLineSupport
import ArgumentParser
import Foundation
import GarbageCollection
import Logging
import SpeedyClients
import SpeedyCore
import ToolSupport

struct GarbageCollect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Collect garbage now: untagged manifests, unreferenced blobs, their chunks, failed writes.",
        discussion: """
            Runs while the cluster serves (docs/gc.md). In order: upload sessions idle for \
            --upload-expiry end and their chunks are deleted; manifests with no tag, no index listing \
            them and no live subject, last pushed more than --grace ago, are deleted; then blobs no \
            manifest in any repository refers to, last pushed, mounted or referenced more than \
            --grace ago, and their chunks on every member of their group; last, chunks that a \
            chunkserver has held for more than --chunk-grace and that no blob or upload refers to \
            (writes that failed half-way). Metadata goes first, so a crash leaves at most garbage \
            for the next run. With --compact, every chunkserver then compacts the volumes whose \
            live fraction is under its threshold. Exit status 0 when done, 1 when some chunks \
            could not be deleted (a member did not answer; the next run retries them), 2 when gc \
            could not run.
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).")
    var meta: String?

    @Option(help: "Keep manifests and blobs referenced more recently than this (e.g. 30m, 1h, 7d).")
    var grace = DurationArgument(.seconds(3600))

    @Option(
        help: """
            Delete unreferenced chunks only once held this long; it must exceed the imageservers' \
            --hold-deadline (default: --grace, at least 10m).
            """)
    var chunkGrace: DurationArgument?

    @Option(help: "End upload sessions idle this long and delete their chunks.")
    var uploadExpiry = DurationArgument(.seconds(24 * 3600))

    @Flag(help: "Report what would be deleted; delete nothing.")
    var dryRun = false

    @Flag(help: "Afterwards, compact the chunkservers' volumes that fall under their live threshold.")
    var compact = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let transport = options.transport
        let metaURL = MasterLocation.normalize(meta ?? ProcessInfo.processInfo.environment["SPEEDY_META"] ?? "http://127.0.0.1:8100", scheme: transport.scheme)
        var logger = Logger(label: "chunktool.gc")
        logger.logLevel = .error
        let collector = GarbageCollector(
            meta: MetaClient(baseURL: metaURL, transport: transport), master: options.client, cluster: transport, logger: logger)
        let settings = GarbageCollectionOptions(
            grace: grace.duration, chunkGrace: chunkGrace?.duration, uploadExpiry: uploadExpiry.duration, dryRun: dryRun,
            compact: compact)
        let job = JobReporter(kind: "gc", target: dryRun ? "the cluster (dry run)" : "the cluster", client: options.client)
        let progress = ProgressBar(enabled: !json, job: job)
        let report: GarbageCollectionReport
        do {
            report = try await collector.run(settings) { step, steps, phase in
                progress.update(done: step - 1, total: steps, bytes: 0, label: "steps: " + phase)
            }
        } catch {
            progress.finish()
            await job.end(.failed, message: "\(error)")
            throw couldNotRun("\(error)")
        }
        progress.finish()
        await job.end(report.chunksPending > 0 ? .failed : .finished, message: report.summary)
        if json {
            try printJSON(report)
        } else {
            print(report.summary + " in \(report.durationMs) ms")
            for group in report.groups {
                print("group \(group.group): \(group.chunksDeleted) chunks of deleted blobs and uploads, \(group.orphansDeleted) unreferenced chunks, \(ByteSize.format(group.bytesFreed)) freed")
            }
            if report.chunksPending > 0 { print("\(report.chunksPending) chunks are still queued: a member did not answer; the next run retries") }
        }
        for warning in report.warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        if report.chunksPending > 0 { throw ToolExit.problems }
    }
}

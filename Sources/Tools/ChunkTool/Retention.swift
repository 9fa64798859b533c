import ArgumentParser
import CommandLineSupport
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import ToolSupport

struct Retention: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retention",
        abstract: "Apply the metaserver's retention rules now, or list what they would remove (--dry-run).",
        discussion: """
            The rules are the metaserver's --retention file (docs/gc.md, "Retention"): per \
            repository pattern, a tag is kept when it is among the newest N (keep-newest), was \
            pushed or pulled within a while (keep-recent), or matches a glob (keep-tags); every \
            other tag is removed. Only tags go: the manifests and blobs they leave untagged are \
            garbage collection's to sweep, after its grace (`chunktool gc`, or the metaserver's \
            --gc-every, which applies the rules itself before each sweep). --dry-run lists each \
            tag that would go and why, and removes nothing. Exit status 0 when done, 2 when it \
            could not run (no rules, no metaserver).
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).")
    var meta: String?

    @Flag(help: "List what would be removed and why; remove nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let transport = options.transport
        let metaURL = MasterLocation.normalize(meta ?? ProcessInfo.processInfo.environment["SPEEDY_META"] ?? "http://127.0.0.1:8100", scheme: transport.scheme)
        // One metaserver, never the next on a timeout: a second would start a second sweep
        // while the first still runs.
        let first = metaURL.split(separator: ",").first.map(String.init) ?? metaURL
        let client = MetaClient(baseURL: first, timeout: .hours(6), transport: transport)
        let job = JobReporter(kind: "retention", target: dryRun ? "every repository (dry run)" : "every repository", client: options.client)
        let report: RetentionReport
        do {
            report = try await client.applyRetention(dryRun: dryRun)
        } catch {
            await job.end(.failed, message: "\(error)")
            throw couldNotRun("\(error)")
        }
        await job.end(.finished, message: report.summary)
        if json {
            try printJSON(report)
            return
        }
        let now = currentTimeMillis()
        for removal in report.removals {
            let age = DurationText.format(.milliseconds(max(0, now - removal.pushedMs) / 1000 * 1000))
            print("\(removal.repository):\(removal.tag)  \(removal.digest.description.prefix(19))…  pushed \(age) ago  (rule line \(removal.ruleLine): \(removal.reason))")
        }
        if report.removals.count < report.tagsRemoved {
            print("… and \(report.tagsRemoved - report.removals.count) more (--json lists the first \(RetentionReport.maximumListed))")
        }
        print(report.summary + " in \(report.durationMs) ms")
    }
}

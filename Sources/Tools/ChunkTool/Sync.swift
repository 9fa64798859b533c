import ArgumentParser
import CommandLineSupport
import Foundation
import RegistryClient
import Replication
import SpeedyClients
import SpeedyCore
import ToolSupport

struct Sync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sync",
        abstract: "Copy repositories from one registry to another: into this cluster, or out of it.",
        discussion: """
            Each RULE is `SOURCE-PATTERN[:TAG-PATTERN] -> DESTINATION` (quote it): `team/app -> \
            backup/app` copies one repository; `team/*:v* -> mirror` copies the `v*` tags of every \
            `team/X` in the source's catalog to `mirror/team/X`. Either end is any OCI registry, \
            this cluster's imageserver included. Manifests are copied byte for byte, so digests \
            stay the same; a blob is sent only when the destination lacks it; referrers \
            (signatures, SBOMs) come along with their subject. A tag the destination has with \
            the same digest is left alone, so running the command again after an interruption \
            resumes it. Tags the source no longer has are deleted only with --delete. Logins come \
            from files (USER:PASSWORD on the first line), never the command line. Exit status 0 \
            when everything was copied, 1 when some tags failed (listed), 2 when sync could not \
            run. docs/registry.md, "Replication".
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: ArgumentHelp("Base URL of the registry to copy from, e.g. https://registry.example:5000.", valueName: "url"))
    var from: String

    @Option(help: ArgumentHelp("Login for --from: a file whose first line is USER:PASSWORD.", valueName: "path"))
    var fromCredentials: String?

    @Option(help: ArgumentHelp("The PEM CA of --from's certificate (default: the system's roots).", valueName: "path"))
    var fromCa: String?

    @Option(help: ArgumentHelp("Base URL of the registry to copy to (this cluster's imageserver, or another).", valueName: "url"))
    var to: String

    @Option(help: ArgumentHelp("Login for --to: a file whose first line is USER:PASSWORD.", valueName: "path"))
    var toCredentials: String?

    @Option(help: ArgumentHelp("The PEM CA of --to's certificate (default: the system's roots).", valueName: "path"))
    var toCa: String?

    @Option(help: ArgumentHelp("A file of rules, one per line (# comments), besides those given as arguments.", valueName: "path"))
    var rules: String?

    @Flag(help: "Delete destination tags that the rules cover and the source no longer has.")
    var delete = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Argument(help: ArgumentHelp("SOURCE-PATTERN[:TAG-PATTERN] -> DESTINATION", valueName: "rule"))
    var rule: [String] = []

    func validate() throws {
        _ = try parsedRules()
    }

    func parsedRules() throws -> [SyncRule] {
        var texts = rule
        if let rules {
            guard let data = FileManager.default.contents(atPath: rules), let text = String(data: data, encoding: .utf8) else {
                throw ValidationError("cannot read the rules file \(rules)")
            }
            texts += text.split(separator: "\n").map { String($0.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "") }
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        guard !texts.isEmpty else { throw ValidationError("name at least one rule: SOURCE-PATTERN[:TAG-PATTERN] -> DESTINATION") }
        return try texts.map { text in
            do {
                return try SyncRule(parsing: text)
            } catch {
                throw ValidationError("rule '\(text.prefix(200))': \(error)")
            }
        }
    }

    func run() async throws {
        let rules = try parsedRules()
        let source = try client(from, credentials: fromCredentials, ca: fromCa, flag: "--from")
        let destination = try client(to, credentials: toCredentials, ca: toCa, flag: "--to")
        defer {
            Task {
                await source.shutdown()
                await destination.shutdown()
            }
        }
        let sync = RegistrySync(source: source, destination: destination, deleteMissing: delete)
        let job = JobReporter(kind: "sync", target: "\(from) -> \(to)", client: options.client)
        let started = ContinuousClock.now
        var report = RegistrySync.Report()
        let plans: [RegistrySync.Plan]
        do {
            plans = try await sync.plan(rules, failures: &report.failures)
        } catch {
            await job.end(.failed, message: "\(error)")
            throw couldNotRun("reading the source: \(error)")
        }
        let total = plans.reduce(0) { $0 + $1.tags.count }
        let progress = ProgressBar(enabled: !json, job: job)
        var done = 0
        for plan in plans {
            await sync.run(plan, into: &report) { tag, bytes in
                done += 1
                progress.update(done: done, total: total, bytes: bytes, label: "tags: \(plan.source):\(tag)")
            }
        }
        progress.finish()
        report.durationMs = Int64((ContinuousClock.now - started) / .milliseconds(1))
        await job.end(report.failures.isEmpty ? .finished : .failed, message: report.summary)
        if json {
            try printJSON(report)
        } else {
            print(report.summary + " in \(report.durationMs) ms")
        }
        for failure in report.failures { FileHandle.standardError.write(Data("failed: \(failure)\n".utf8)) }
        if !report.failures.isEmpty { throw ToolExit.problems }
    }

    private func client(_ url: String, credentials: String?, ca: String?, flag: String) throws -> RegistryClient {
        do {
            return try SyncEndpoint(url: url, credentialsFile: credentials, caFile: ca).makeClient()
        } catch {
            throw couldNotRun("\(flag): \(error)")
        }
    }
}

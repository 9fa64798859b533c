import CommandLineSupport
import ArgumentParser
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import ToolSupport

struct Repair: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy each missing or corrupt chunk of a group from a member whose copy verifies.",
        discussion: """
            Runs verify, then for every chunk a member lacks or holds corrupt, reads a copy that \
            passes its CRC from another member and writes it there (a corrupt copy is deleted first). \
            Then verifies again. Running it twice does nothing the second time. Extra chunks (held by \
            a minority of members) are left for garbage collection. Exit status 0 when the group \
            verifies clean afterwards, 1 when problems remain, 2 when it could not run.
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "The group to repair.")
    var group: UInt32

    @Flag(help: "Say what would be copied, and change nothing.")
    var dryRun = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    struct Copy: Codable {
        var fileId: UInt64
        var from: String
        var to: String
        var reason: String
        var done: Bool
        var error: String?
    }

    struct Result: Codable {
        var group: UInt32
        var dryRun: Bool
        var copies: [Copy]
        var after: VerifyReport?
    }

    func run() async throws {
        let target = try await options.group(group)
        let transport = options.transport
        let job = JobReporter(kind: "repair", target: "group \(group)", client: options.client)
        let before = try await verify(target, job: job, transport: transport)
        let copies = await copyMissingAndCorrupt(before, job: job, transport: transport)
        let after = dryRun ? nil : try await verify(target, job: job, transport: transport)
        let result = Result(group: group, dryRun: dryRun, copies: copies, after: after)
        if json {
            try printJSON(result)
        } else {
            if copies.isEmpty { print("group \(group): nothing to repair") }
            for copy in copies {
                let state = dryRun ? "would copy" : (copy.done ? "copied" : "FAILED")
                print("\(state) chunk \(copy.fileId) (\(copy.reason) on \(copy.to)) from \(copy.from)" + (copy.error.map { ": \($0)" } ?? ""))
            }
            if let after { print(after.text) }
        }
        let clean = dryRun ? copies.isEmpty && before.clean : (after?.missing == 0 && after?.corrupt == 0 && after?.members.allSatisfy(\.reachable) == true)
        let copied = copies.count { $0.done }
        await job.end(clean ? .finished : .failed, message: "\(copied) of \(copies.count) copies made" + (clean ? ", group clean" : ", group not clean"))
        if !clean { throw ToolExit.problems }
    }

    /// Lists and reads every member of the group, with a progress bar.
    private func verify(_ target: GroupSnapshot, job: JobReporter, transport: ClusterTransport) async throws -> VerifyReport {
        let progress = ProgressBar(enabled: !json, job: job)
        defer { progress.finish() }
        return try await job.endingOnFailure {
            try await GroupVerifier(group: target, megabytesPerSecond: 0, readChunks: true, progress: progress, transport: transport).run()
        }
    }

    /// Copies each chunk a reachable member misses or holds corrupt from another member with a
    /// good copy (only says which it would with --dry-run). The copy phase reports progress too:
    /// the console shows it moving (a job silent for 30 s is lost).
    private func copyMissingAndCorrupt(_ before: VerifyReport, job: JobReporter, transport: ClusterTransport) async -> [Copy] {
        var copies: [Copy] = []
        let toCopy = before.members.filter(\.reachable).reduce(0) { $0 + $1.missing.count + $1.corrupt.count }
        var copiedBytes: UInt64 = 0
        job.progress(done: 0, total: toCopy, bytes: 0)
        for member in before.members where member.reachable {
            let needs = member.missing.map { ($0, "missing") } + member.corrupt.map { ($0, "corrupt") }
            for (id, reason) in needs.sorted(by: { $0.0 < $1.0 }) {
                // A source is any other reachable member that lists the chunk and did not fail its read.
                let source = before.members.first { other in
                    other.id != member.id && other.reachable && !other.corrupt.contains(id) && !other.missing.contains(id) && !other.extra.contains(id)
                }
                var copy = Copy(fileId: id, from: source?.id ?? "-", to: member.id, reason: reason, done: false)
                if source == nil {
                    copy.error = "no member has a good copy"
                } else if let source, !dryRun {
                    do {
                        copiedBytes += try await copyChunk(id, from: source.addr, to: member.addr, replacing: reason == "corrupt", transport: transport)
                        copy.done = true
                    } catch {
                        copy.error = "\(error)"
                    }
                }
                copies.append(copy)
                job.progress(done: copies.count, total: toCopy, bytes: copiedBytes)
            }
        }
        return copies
    }

    /// Copies one chunk (deleting the destination's bad copy first); returns its size.
    private func copyChunk(_ id: UInt64, from source: String, to destination: String, replacing: Bool, transport: ClusterTransport) async throws -> UInt64 {
        let key = ChunkKey(group: group, fileId: id)
        let data = try await ChunkServerClient(baseURL: source, transport: transport).get(key)
        let target = ChunkServerClient(baseURL: destination, transport: transport)
        if replacing { try await target.delete(key) }
        _ = try await target.put(key, data: data)
        return UInt64(data.readableBytes)
    }
}

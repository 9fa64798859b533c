import ArgumentParser
import CommandLineSupport
import Foundation
import SpeedyClients
import SpeedyCore
import ToolSupport

extension GroupCommand {
    /// `chunktool group drain G`: empties a group of every chunk blobs use, while the cluster serves.
    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move every chunk of a group to other groups while the cluster serves, so the group can be removed.",
            discussion: """
                Marks the group draining (imageservers place no new chunks in it; it still serves \
                reads), then copies each chunk a blob uses to a writable group, checking its CRC on \
                every member, and switches the blob to the copy. Chunks of uploads in progress are \
                moved once their upload completes (it is waited for, up to --wait-uploads). It scans \
                again until a scan at least --settle after the drain began finds nothing left. Run it \
                again to resume; a drained group's second run does nothing. Afterwards the old copies \
                stay for pulls under way until `chunktool gc` finds them past its --grace, and then \
                `chunktool group remove G` retires the group and its members (docs/recovery.md). \
                `chunktool group undrain G` lets the group take new chunks again. Exit status 0 when \
                no blob uses the group any more, 1 when chunks are left, 2 when it could not run.
                """
        )

        @OptionGroup var options: MasterOptions
        @OptionGroup var migration: MigrationOptions

        @Argument(help: "The group to drain.")
        var group: UInt32

        @Option(
            help: """
                Declare the group empty only from a scan this long after the drain began: more than \
                the imageservers' --hold-deadline plus the 5 s a cluster map may be old.
                """)
        var settle = DurationArgument(.seconds(70))

        @Option(help: "How long to wait for uploads in progress that hold chunks of the group.")
        var waitUploads = DurationArgument(.seconds(600))

        @Flag(help: "Print the report as JSON.")
        var json = false

        /// What `group drain --json` prints.
        struct Report: Codable {
            var group: UInt32
            /// No blob uses the group any more.
            var drained: Bool
            var passes: Int
            var moved: MigrationTally
            /// Chunks still used at the end (a failure, or uploads that did not end in time).
            var chunksLeft: Int
            /// Upload sessions still holding chunks of the group at the end.
            var uploadsLeft: [String]
            var durationMs: Int64
            var bytesPerSecond: Double
        }

        func run() async throws {
            let transport = options.transport
            let meta = migration.metaClient(transport)
            try await startDraining(transport)
            let job = JobReporter(kind: "drain", target: "group \(group)", client: options.client)
            let progress = ProgressBar(enabled: !json, job: job)
            let mover = ChunkMover(meta: meta, ids: FileIdPool(master: options.client, leaseSize: 64), transport: transport)
            let report = try await job.endingOnFailure { try await drain(meta: meta, mover: mover, progress: progress) }
            progress.finish()
            let summary = "\(report.moved.chunksMoved) chunks (\(ByteSize.format(report.moved.bytesMoved))) moved"
                + (report.drained ? ", group \(group) drained" : ", \(report.chunksLeft) chunks left")
            await job.end(report.drained ? .finished : .failed, message: summary)
            try output(report)
            if !report.drained { throw ToolExit.problems }
        }

        /// Sets the draining flag (again, harmlessly, on a resumed drain) once another group can
        /// take the chunks.
        private func startDraining(_ transport: ClusterTransport) async throws {
            let snapshot = try await options.snapshot()
            guard snapshot.groups.contains(where: { $0.id == group }) else { throw couldNotRun("group \(group) is not known to the master at \(options.url)") }
            guard !snapshot.destinations(excluding: group).isEmpty else {
                throw couldNotRun("no other group takes writes: add one (`chunktool group add`) or make one healthy first")
            }
            do {
                _ = try await options.client.setDraining(group, true)
            } catch {
                throw couldNotRun(options.reason(error))
            }
        }

        /// Passes until one, late enough, finds nothing left; or one that moved nothing failed.
        private func drain(meta: MetaClient, mover: ChunkMover, progress: ProgressBar) async throws -> Report {
            let started = ContinuousClock.now
            var report = Report(group: group, drained: false, passes: 0, moved: MigrationTally(), chunksLeft: 0, uploadsLeft: [], durationMs: 0, bytesPerSecond: 0)
            var waitingSince: ContinuousClock.Instant?
            while true {
                let snapshot = try await options.snapshot()
                let scan = try await scan(meta)
                report.passes += 1
                (report.chunksLeft, report.uploadsLeft) = (scan.movable.count, scan.uploads.sorted())
                if scan.movable.isEmpty && scan.uploads.isEmpty {
                    let wait = settleLeft(snapshot)
                    if wait <= .zero { break }
                    try await Task.sleep(for: wait)
                    continue
                }
                if scan.movable.isEmpty {
                    // Only uploads hold chunks here: their sessions end (complete or expire) on their own.
                    waitingSince = waitingSince ?? .now
                    if ContinuousClock.now - waitingSince! > waitUploads.duration { break }
                    try await Task.sleep(for: .seconds(2))
                    continue
                }
                let pass = await move(scan, snapshot: snapshot, mover: mover, progress: progress, movedBefore: report.moved)
                report.moved.add(pass)
                // A pass that moved nothing and failed would fail again: stop and say why.
                if pass.chunksMoved == 0 && pass.chunksNoLongerUsed == 0 && pass.failed > 0 { break }
            }
            report.drained = report.chunksLeft == 0 && report.uploadsLeft.isEmpty
            let elapsed = ContinuousClock.now - started
            report.durationMs = elapsed.milliseconds
            report.bytesPerSecond = Double(report.moved.bytesMoved) / max(0.001, Double(elapsed.milliseconds) / 1000)
            return report
        }

        private func scan(_ meta: MetaClient) async throws -> GroupScan {
            do {
                return try await GroupScan.read(group: group, from: meta)
            } catch {
                throw couldNotRun("cannot read group \(group)'s chunk references from the metaserver: \(error)")
            }
        }

        /// How much longer until a scan may call the group empty: writes placed by a map taken
        /// before the flag, and referenced up to the hold deadline after, are visible by then.
        private func settleLeft(_ snapshot: ClusterSnapshot) -> Duration {
            guard let since = snapshot.groups.first(where: { $0.id == group })?.drainingSinceMs else { return .zero }
            return settle.duration - .milliseconds(snapshot.generatedAtMs - since)
        }

        /// One pass: every movable chunk to the destination it fills least, by free space.
        private func move(
            _ scan: GroupScan, snapshot: ClusterSnapshot, mover: ChunkMover, progress: ProgressBar, movedBefore: MigrationTally
        ) async -> MigrationTally {
            let destinations = snapshot.destinations(excluding: group)
            guard !destinations.isEmpty else {
                var tally = MigrationTally()
                (tally.failed, tally.failures) = (scan.movable.count, ["no other group takes writes now"])
                return tally
            }
            var assigned: [UInt32: UInt64] = [:]
            let moves = scan.movable.map { chunk -> PlannedMove in
                // Spread by free space: the group this chunk would leave the most room in.
                let best = destinations.min { a, b in
                    Double(assigned[a.id, default: 0]) / Double(max(1, a.diskFreeBytes)) < Double(assigned[b.id, default: 0]) / Double(max(1, b.diskFreeBytes))
                }!
                assigned[best.id, default: 0] += UInt64(chunk.chunk.length)
                return PlannedMove(chunk: chunk, destination: best.id)
            }
            let run = MigrationRun(mover: mover, snapshot: snapshot, megabytesPerSecond: migration.rate, concurrency: migration.concurrency)
            let total = moves.count, totalBytes = scan.bytes, label = "chunks of group \(group)"
            return await run.run(moves) { done, bytes in
                progress.update(done: done, total: total, bytes: bytes, totalBytes: totalBytes, label: label)
            }
        }

        private func output(_ report: Report) throws {
            if json { return try printJSON(report) }
            let rate = ByteSize.format(report.bytesPerSecond) + "/s"
            print("group \(group): \(report.moved.chunksMoved) chunks (\(ByteSize.format(report.moved.bytesMoved))) moved, \(report.moved.blobsSwitched) blob references switched in \(report.passes) passes, \(Double(report.durationMs) / 1000) s (\(rate))")
            if report.drained {
                print("group \(group) is drained: no blob uses it. Its old copies go with `chunktool gc` once past the grace; then `chunktool group remove \(group)`.")
            } else {
                print("group \(group) is NOT drained: \(report.chunksLeft) chunks left, \(report.uploadsLeft.count) uploads holding chunks; run it again to resume")
            }
            for failure in report.moved.failures { FileHandle.standardError.write(Data("warning: \(failure)\n".utf8)) }
        }
    }

    /// `chunktool group undrain G`: the undo of a drain's flag.
    struct Undrain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Let a draining group take new chunks again.",
            discussion: "Chunks moved away stay where they are. Recorded in the master's event log. Exit status 0 when done, 2 when refused or the master cannot be asked."
        )

        @OptionGroup var options: MasterOptions

        @Argument(help: "The group.")
        var group: UInt32

        func run() async throws {
            do {
                _ = try await options.client.setDraining(group, false)
            } catch {
                throw couldNotRun(options.reason(error))
            }
            print("group \(group) takes new chunks")
        }
    }
}

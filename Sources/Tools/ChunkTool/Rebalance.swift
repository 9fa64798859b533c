import ArgumentParser
import CommandLineSupport
import Foundation
import SpeedyClients
import SpeedyCore
import ToolSupport

/// How full each group is, by the bytes blobs keep in it against its capacity: what a rebalance
/// evens out. Pure, so the plan is tested without a cluster.
struct GroupBalance: Sendable, Equatable {
    /// Bytes blobs reference per group.
    var bytes: [UInt32: UInt64]
    /// Each group's capacity: its smallest member's disk.
    var capacity: [UInt32: UInt64]

    /// Bytes over capacity.
    func fill(_ group: UInt32, adding delta: Int64 = 0) -> Double {
        Double(Int64(bytes[group, default: 0]) + delta) / Double(max(1, capacity[group, default: 1]))
    }

    /// The fullest and the emptiest group (the lower id on ties).
    var fullest: UInt32? { capacity.keys.sorted().max { fill($0) < fill($1) } }
    var emptiest: UInt32? { capacity.keys.sorted().min { fill($0) < fill($1) } }

    /// How far apart the fills are, relative to the fullest: 0 when even, 1 when a group is empty
    /// and another is not.
    var spread: Double {
        guard let fullest, let emptiest, fill(fullest) > 0 else { return 0 }
        return (fill(fullest) - fill(emptiest)) / fill(fullest)
    }

    /// Accounts `amount` moved from `source` to `destination`.
    mutating func move(_ amount: UInt64, from source: UInt32, to destination: UInt32) {
        bytes[source, default: 0] -= min(amount, bytes[source, default: 0])
        bytes[destination, default: 0] += amount
    }
}

struct Rebalance: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move chunks from the fullest groups to the emptiest until their fill is within a spread.",
        discussion: """
            A group's fill is the bytes blobs keep in it over its capacity (its smallest member's \
            disk); the spread is how far the emptiest group's fill is below the fullest's, relative to \
            the fullest's. Chunks move from the fullest to the emptiest group, as `group drain` moves \
            them (copy, CRC checked on every member, then the blob switched), until the spread is \
            within --max-spread or a chunk would overshoot. Only writable groups that are not \
            draining take part. The old copies go with `chunktool gc` once past its --grace. Exit \
            status 0 when done (or within the spread already), 1 when some chunks could not be \
            moved, 2 when it could not run.
            """
    )

    @OptionGroup var options: MasterOptions
    @OptionGroup var migration: MigrationOptions

    @Option(help: "The spread to reach, as a percentage (10%) of the fullest group's fill.", transform: Rebalance.parseSpread)
    var maxSpread = 0.10

    @Flag(help: "Say what would move, and move nothing.")
    var dryRun = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    /// What `rebalance --json` prints.
    struct Report: Codable {
        var dryRun: Bool
        var maxSpread: Double
        var spreadBefore: Double
        /// As planned (dry run), or as the metaserver counts after the moves.
        var spreadAfter: Double
        var groups: [GroupFill]
        /// Planned chunks and bytes per source and destination group.
        var plan: [Flow]
        var moved: MigrationTally
        var durationMs: Int64
    }

    /// One group before and after (planned, in a dry run).
    struct GroupFill: Codable {
        var group: UInt32
        var capacity: UInt64
        var bytesBefore: UInt64
        var bytesAfter: UInt64
        var fillBefore: Double
        var fillAfter: Double

        static func list(_ before: GroupBalance, _ after: GroupBalance) -> [GroupFill] {
            before.capacity.keys.sorted().map { id in
                GroupFill(
                    group: id, capacity: before.capacity[id, default: 0], bytesBefore: before.bytes[id, default: 0],
                    bytesAfter: after.bytes[id, default: 0], fillBefore: before.fill(id), fillAfter: after.fill(id))
            }
        }
    }

    /// Chunks planned from one group to another.
    struct Flow: Codable {
        var from: UInt32
        var to: UInt32
        var chunks: Int
        var bytes: UInt64
    }

    static func parseSpread(_ text: String) throws -> Double {
        let number = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let percent = Double(number), percent > 0, percent < 100 else { throw ValidationError("--max-spread is a percentage between 0 and 100, like 10%") }
        return percent / 100
    }

    func run() async throws {
        let started = ContinuousClock.now
        let transport = options.transport
        let meta = migration.metaClient(transport)
        let snapshot = try await options.snapshot()
        let before = try await balance(snapshot, meta)
        let (moves, planned) = try await plan(before, meta)
        var report = Report(
            dryRun: dryRun, maxSpread: maxSpread, spreadBefore: before.spread, spreadAfter: planned.spread, groups: GroupFill.list(before, planned),
            plan: flows(moves), moved: MigrationTally(), durationMs: 0)
        if !dryRun && !moves.isEmpty {
            let job = JobReporter(kind: "rebalance", target: "\(Set(moves.map(\.chunk.chunk.group)).count) groups", client: options.client)
            let progress = ProgressBar(enabled: !json, job: job)
            let mover = ChunkMover(meta: meta, ids: FileIdPool(master: options.client, leaseSize: 64), transport: transport)
            let run = MigrationRun(mover: mover, snapshot: snapshot, megabytesPerSecond: migration.rate, concurrency: migration.concurrency)
            let total = moves.count, totalBytes = moves.reduce(0) { $0 + UInt64($1.chunk.chunk.length) }
            report.moved = await run.run(moves) { done, bytes in progress.update(done: done, total: total, bytes: bytes, totalBytes: totalBytes) }
            progress.finish()
            let after = try await balance(snapshot, meta)
            (report.groups, report.spreadAfter) = (GroupFill.list(before, after), after.spread)
            let summary = "\(report.moved.chunksMoved) chunks (\(ByteSize.format(report.moved.bytesMoved))) moved, spread \(Self.percent(report.spreadAfter))"
            await job.end(report.moved.failed == 0 ? .finished : .failed, message: summary)
        }
        report.durationMs = (ContinuousClock.now - started).milliseconds
        try output(report)
        if report.moved.failed > 0 { throw ToolExit.problems }
    }

    /// The groups that take part, with the bytes the metaserver counts in each.
    private func balance(_ snapshot: ClusterSnapshot, _ meta: MetaClient) async throws -> GroupBalance {
        let usage: [GroupUsage]
        do {
            usage = try await meta.groupUsage()
        } catch {
            throw couldNotRun("cannot read the groups' usage from the metaserver: \(error)")
        }
        let groups = snapshot.destinations().filter { $0.diskTotalBytes > 0 }
        let bytes = Dictionary(uniqueKeysWithValues: usage.map { ($0.group, $0.bytes) })
        return GroupBalance(
            bytes: Dictionary(uniqueKeysWithValues: groups.map { ($0.id, bytes[$0.id, default: 0]) }),
            capacity: Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0.diskTotalBytes) }))
    }

    /// Chunks from the fullest group to the emptiest, one at a time, until within the spread or
    /// the fullest has no chunk left that would not leave the emptiest fuller than it (one that
    /// would is passed over: a smaller one may fit).
    private func plan(_ start: GroupBalance, _ meta: MetaClient) async throws -> ([PlannedMove], GroupBalance) {
        var balance = start
        var moves: [PlannedMove] = []
        var chunks: [UInt32: ArraySlice<MovableChunk>] = [:]
        while balance.spread > maxSpread, let source = balance.fullest, let destination = balance.emptiest, source != destination {
            if chunks[source] == nil { chunks[source] = try await scan(source, meta)[...] }
            guard let next = chunks[source]!.popFirst() else { break }
            let amount = Int64(next.referencedBytes)
            if balance.fill(destination, adding: amount) > balance.fill(source, adding: -amount) { continue }
            balance.move(UInt64(amount), from: source, to: destination)
            moves.append(PlannedMove(chunk: next, destination: destination))
        }
        return (moves, balance)
    }

    private func scan(_ group: UInt32, _ meta: MetaClient) async throws -> [MovableChunk] {
        do {
            return try await GroupScan.read(group: group, from: meta).movable
        } catch {
            throw couldNotRun("cannot read group \(group)'s chunk references from the metaserver: \(error)")
        }
    }

    private func flows(_ moves: [PlannedMove]) -> [Flow] {
        var flows: [String: Flow] = [:]
        for move in moves {
            let key = "\(move.chunk.chunk.group)>\(move.destination)"
            var flow = flows[key] ?? Flow(from: move.chunk.chunk.group, to: move.destination, chunks: 0, bytes: 0)
            flow.chunks += 1
            flow.bytes += UInt64(move.chunk.chunk.length)
            flows[key] = flow
        }
        return flows.values.sorted { ($0.from, $0.to) < ($1.from, $1.to) }
    }

    static func percent(_ fraction: Double) -> String { String(format: "%.1f%%", fraction * 100) }

    private func output(_ report: Report) throws {
        if json { return try printJSON(report) }
        print("spread \(Self.percent(report.spreadBefore)) (at most \(Self.percent(report.maxSpread)) wanted)")
        for flow in report.plan {
            print("\(dryRun ? "would move" : "planned") \(flow.chunks) chunks (\(ByteSize.format(flow.bytes))) from group \(flow.from) to group \(flow.to)")
        }
        if report.plan.isEmpty { print("nothing to move") }
        if !dryRun && !report.plan.isEmpty {
            print("\(report.moved.chunksMoved) chunks (\(ByteSize.format(report.moved.bytesMoved))) moved; spread now \(Self.percent(report.spreadAfter))")
        }
        for group in report.groups {
            print("group \(group.group): \(ByteSize.format(group.bytesAfter)) of \(ByteSize.format(group.capacity)) (\(Self.percent(group.fillAfter)))")
        }
        for failure in report.moved.failures { FileHandle.standardError.write(Data("warning: \(failure)\n".utf8)) }
    }
}

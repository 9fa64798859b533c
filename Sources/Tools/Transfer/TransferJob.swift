import CommandLineSupport
import ArgumentParser
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import Synchronization
import ToolSupport

/// What a transfer did; `--json` prints it.
struct TransferReport: Codable {
    var group: UInt32
    var to: String
    var toId: String
    var from: String
    var passes: Int
    var chunksCopied: Int
    var bytesCopied: UInt64
    var chunksAlreadyThere: Int
    /// Chunks the new member holds at the end that transfer did not copy: imageservers wrote them
    /// there while it was TRANSFERRING.
    var chunksWrittenByImageservers: Int
    var seconds: Double
    var megabytesPerSecond: Double
    /// Chunks that could not be copied, with the reason.
    var failures: [String]
    /// Source chunks the new member's listing lacks (or holds with another CRC) at the end.
    var unverified: [UInt64]
    var retired: [String]
    /// What an operator should know or do next.
    var notes: [String]
    var markedReadWrite: Bool
    var complete: Bool

    var text: String {
        var lines = [
            "group \(group): copied \(chunksCopied) chunks (\(ByteSize.format(bytesCopied))) from \(from) to \(toId) at \(to) in \(passes) pass(es), "
                + "\(chunksAlreadyThere) already there, \(chunksWrittenByImageservers) written by imageservers meanwhile; "
                + "\(String(format: "%.1f", seconds)) s, \(String(format: "%.1f", megabytesPerSecond)) MB/s"
        ]
        for failure in failures.prefix(20) { lines.append("  FAILED: \(failure)") }
        if !unverified.isEmpty { lines.append("  verification: \(unverified.count) chunk(s) of the source missing or different on \(toId)") }
        if complete {
            lines.append("verified: \(toId) holds every chunk of \(from)")
            if !retired.isEmpty { lines.append("removed \(retired.joined(separator: ", ")) from group \(group)") }
            lines.append("\(toId) is RW")
            for note in notes { lines.append("note: \(note)") }
        } else {
            lines.append("not complete: \(toId) stays TRANSFERRING; run transfer again to resume")
        }
        return lines.joined(separator: "\n")
    }
}

/// One transfer, from preparation to the master's final change.
struct TransferJob {
    let command: Transfer
    let master: MasterClient
    var destination: MemberSnapshot
    var source: MemberSnapshot
    /// When the destination was last seen becoming TRANSFERRING.
    let transferringSince: ContinuousClock.Instant
    /// Where the copy's progress goes, for the console.
    var reporter: JobReporter?

    /// Finds the new member and a source, and sets the new member TRANSFERRING.
    static func prepare(_ command: Transfer) async throws -> TransferJob {
        let master = command.options.client
        let deadline = ContinuousClock.now + .milliseconds(Int64(command.wait * 1000))
        // By id, not address: a replacement may take over the dead server's address.
        let newId: String
        do {
            let stats = try await ChunkServerClient(baseURL: command.to, timeout: .seconds(5), transport: master.transport).stats()
            newId = stats.serverId
            guard stats.group == command.group else {
                throw couldNotRun("the chunkserver at \(command.to) serves group \(stats.group), not \(command.group)")
            }
        } catch let error as ServiceError {
            throw couldNotRun("cannot ask the chunkserver at \(command.to) for its id: \(command.options.reason(error)); start it with: speedy chunkserver --group \(command.group) --listen \(command.to) --data DIR --master \(command.options.url)")
        }
        var group = try await command.options.group(command.group)
        // The new chunkserver joins by its first heartbeat; give it time.
        while group.members.first(where: { $0.id == newId && $0.status != .down && $0.status != .initializing }) == nil {
            guard ContinuousClock.now < deadline else {
                throw couldNotRun("chunkserver \(newId) at \(command.to) has not joined group \(command.group) at \(command.options.url)")
            }
            try await Task.sleep(for: .milliseconds(250))
            group = try await command.options.group(command.group)
        }
        var destination = group.members.first { $0.id == newId }!
        if destination.status != .transferring {
            do {
                group = try await master.setStatus(of: destination.id, to: .transferring)
            } catch {
                throw couldNotRun("cannot set \(destination.id) TRANSFERRING: \(command.options.reason(error))")
            }
            destination = group.members.first { $0.id == destination.id } ?? destination
        }
        let candidates = group.members.filter { $0.id != destination.id && $0.status.isReadable }
        let source: MemberSnapshot
        if let from = command.from {
            guard let chosen = group.members.first(where: { $0.id == from }) else {
                throw couldNotRun("server \(from) is not a member of group \(command.group)")
            }
            guard chosen.status.isReadable, chosen.id != destination.id else {
                throw couldNotRun("server \(from) is \(chosen.status.rawValue); copy from an RW or RO member")
            }
            source = chosen
        } else {
            guard let best = candidates.min(by: { ($0.status == .readWrite ? 0 : 1, $0.readBytesPerSec) < ($1.status == .readWrite ? 0 : 1, $1.readBytesPerSec) }) else {
                throw couldNotRun("group \(command.group) has no readable member to copy from")
            }
            source = best
        }
        return TransferJob(command: command, master: master, destination: destination, source: source, transferringSince: .now)
    }

    /// Copies until the destination holds every chunk of the source, verifies the two listings,
    /// then retires the member the destination replaces and sets the destination `RW`.
    func run() async throws -> TransferReport {
        let started = ContinuousClock.now
        var report = TransferReport(
            group: command.group, to: destination.addr, toId: destination.id, from: source.id, passes: 0, chunksCopied: 0, bytesCopied: 0,
            chunksAlreadyThere: 0, chunksWrittenByImageservers: 0, seconds: 0, megabytesPerSecond: 0, failures: [], unverified: [], retired: [], notes: [], markedReadWrite: false, complete: false)
        let copiedIds = try await copyUntilSettled(&report)
        try await verify(&report, copiedIds: copiedIds)
        let elapsed = ContinuousClock.now - started
        report.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        report.megabytesPerSecond = report.seconds > 0 ? Double(report.bytesCopied) / 1e6 / report.seconds : 0
        guard report.failures.isEmpty, report.unverified.isEmpty else { return report }
        try await retireReplaced(&report)
        do {
            _ = try await master.setStatus(of: destination.id, to: .readWrite)
            report.markedReadWrite = true
        } catch {
            throw couldNotRun("the copy is verified, but marking \(destination.id) RW failed: \(command.options.reason(error))")
        }
        report.complete = true
        return report
    }

    private var sourceClient: ChunkServerClient { ChunkServerClient(baseURL: source.addr, transport: master.transport) }
    private var destinationClient: ChunkServerClient { ChunkServerClient(baseURL: destination.addr, transport: master.transport) }

    /// Both members' listings of the group, or exit status 2 saying what was being done.
    private func listings(for purpose: String) async throws -> (source: [UInt64: ChunkInfo], destination: [UInt64: ChunkInfo]) {
        do {
            return (try await sourceClient.listAll(group: command.group), try await destinationClient.listAll(group: command.group))
        } catch {
            throw couldNotRun("cannot list chunks\(purpose): \(command.options.reason(error))")
        }
    }

    /// The source's chunks the destination lacks, or holds with another CRC or length, by file id.
    private static func missing(from destination: [UInt64: ChunkInfo], of source: [UInt64: ChunkInfo]) -> [ChunkInfo] {
        source.values.filter { info in
            destination[info.fileId].map { $0.crc != info.crc || $0.length != info.length } ?? true
        }.sorted { $0.fileId < $1.fileId }
    }

    /// Copy passes until one finds nothing to copy after the settle time (imageservers that had not
    /// seen the destination yet may still have written to the source alone), a pass fails, or 50
    /// passes could not catch up. Returns the ids copied; counts go into `report`.
    private func copyUntilSettled(_ report: inout TransferReport) async throws -> Set<UInt64> {
        let counters = CopyCounters()
        let limiter = RateLimiter(megabytesPerSecond: command.rate)
        let progress = ProgressBar(enabled: !command.json, job: reporter)
        var copiedIds: Set<UInt64> = []
        var listedOnce = false
        while true {
            let (sourceListing, destinationListing) = try await listings(for: "")
            let todo = Self.missing(from: destinationListing, of: sourceListing)
            if !listedOnce {
                report.chunksAlreadyThere = sourceListing.count - todo.count
                listedOnce = true
            }
            if todo.isEmpty {
                // Writes from imageservers that had not yet seen the new member are over once
                // every imageserver refreshed its map: only then is an empty pass the last one.
                if ContinuousClock.now - transferringSince >= .milliseconds(Int64(command.settle * 1000)) { break }
                try await Task.sleep(for: .milliseconds(500))
                continue
            }
            guard report.passes < 50 else {
                report.failures.append("the source keeps gaining chunks faster than they are copied (50 passes); run transfer again, or with a higher --rate")
                break
            }
            report.passes += 1
            let outcomes = await copyPass(todo, present: destinationListing, counters: counters, limiter: limiter, progress: progress)
            for (id, failure) in outcomes where failure == nil { copiedIds.insert(id) }
            let failures = outcomes.compactMap(\.1)
            if !failures.isEmpty {
                report.failures = failures
                break
            }
        }
        report.chunksCopied = copiedIds.count
        report.bytesCopied = counters.copied.load(ordering: .relaxed)
        return copiedIds
    }

    /// Copies `todo` with `--concurrency` workers, paced by `limiter`, showing progress; returns
    /// each copied chunk's id with nil, or with why it failed.
    private func copyPass(
        _ todo: [ChunkInfo], present: [UInt64: ChunkInfo], counters: CopyCounters, limiter: RateLimiter, progress: ProgressBar
    ) async -> [(UInt64, String?)] {
        let (groupId, master, source, destination) = (command.group, master, sourceClient, destinationClient)
        let totalBytes = todo.reduce(UInt64(0)) { $0 + UInt64($1.length) }
        counters.startPass()
        let passStart = counters.copied.load(ordering: .relaxed)
        defer { progress.finish() }
        return await withTaskGroup(of: [(UInt64, String?)].self) { workers in
            for _ in 0..<command.concurrency {
                workers.addTask {
                    var outcomes: [(UInt64, String?)] = []
                    while true {
                        let index = counters.next.add(1, ordering: .relaxed).oldValue
                        guard index < todo.count else { return outcomes }
                        let info = todo[index]
                        do {
                            let key = ChunkKey(group: groupId, fileId: info.fileId)
                            if try await Self.copy(key, master: master, info: info, from: source, to: destination, replacing: present[info.fileId] != nil) {
                                let total = counters.copied.add(UInt64(info.length), ordering: .relaxed).newValue
                                try? await limiter.wait(after: total)
                                outcomes.append((info.fileId, nil))
                            }
                        } catch {
                            outcomes.append((info.fileId, "chunk \(info.fileId): \(error)"))
                        }
                        let finished = counters.done.add(1, ordering: .relaxed).newValue
                        progress.update(done: finished, total: todo.count, bytes: counters.copied.load(ordering: .relaxed) - passStart, totalBytes: totalBytes)
                    }
                }
            }
            return await workers.reduce(into: [(UInt64, String?)]()) { $0 += $1 }
        }
    }

    /// The final verification: the two listings, chunk for chunk. A chunk an imageserver is
    /// writing along the chain is on one member a moment before the other, so a difference counts
    /// only when it is still there at every look over the next seconds.
    private func verify(_ report: inout TransferReport, copiedIds: Set<UInt64>) async throws {
        var (sourceListing, destinationListing) = try await listings(for: " for the final verification")
        var unverified = Set(Self.missing(from: destinationListing, of: sourceListing).map(\.fileId))
        for _ in 0..<3 where !unverified.isEmpty {
            try await Task.sleep(for: .seconds(1))
            (sourceListing, destinationListing) = try await listings(for: " for the final verification")
            unverified.formIntersection(Self.missing(from: destinationListing, of: sourceListing).map(\.fileId))
        }
        report.unverified = unverified.sorted()
        report.chunksWrittenByImageservers = max(0, Set(destinationListing.keys).subtracting(copiedIds).count - report.chunksAlreadyThere)
    }

    /// Retires the dead member first, so the group stays writable (recovering, then healthy).
    private func retireReplaced(_ report: inout TransferReport) async throws {
        for id in try await membersToRetire(&report) {
            do {
                _ = try await master.removeServer(id)
                report.retired.append(id)
            } catch {
                // Removed by an earlier run that stopped before its end: done already.
                if case .status(_, 409, let body?) = error, body.internalCode == .serverRetired {
                    report.retired.append(id)
                    continue
                }
                throw couldNotRun("the copy is verified, but removing \(id) failed: \(command.options.reason(error))")
            }
        }
    }

    /// `--replaces`, else the one member the master fenced for this replacement if it is still
    /// silent: one that came back (a reboot) keeps its data and needs a repair instead, and when
    /// several were fenced an operator chooses. What an operator must do goes into the notes.
    private func membersToRetire(_ report: inout TransferReport) async throws -> [String] {
        let group = try await command.options.group(command.group)
        func isSilent(_ m: MemberSnapshot) -> Bool { m.lastHeartbeatAgeMs < 0 || m.lastHeartbeatAgeMs > 5000 }
        let fenced = group.members.filter { $0.fencedBy == destination.id && $0.status == .offline }
        var silent = fenced.filter(isSilent)
        if fenced.isEmpty {
            // Nothing fenced for it (a member lost before this master ever saw it, say): the
            // group's one silent absent member not fenced for another replacement.
            silent = group.members.filter { $0.id != destination.id && $0.status.isAbsent && $0.fencedBy == nil && isSilent($0) }
        }
        var retire: [String] = []
        if let replaces = command.replaces {
            retire = [replaces]
        } else if silent.count == 1 {
            retire = [silent[0].id]
        } else if silent.count > 1 {
            report.notes.append("\(silent.count) members were fenced for \(destination.id) (\(silent.map(\.id).joined(separator: ", "))); remove the one it replaces with chunktool server remove, or run transfer with --replaces")
        }
        for member in fenced where !silent.contains(where: { $0.id == member.id }) {
            report.notes.append("\(member.id) was fenced OFFLINE for \(destination.id) but is running again: it missed writes; run chunktool repair --group \(command.group), then chunktool server set-status \(member.id) rw")
        }
        return retire
    }

    /// Copies one chunk, reading it from another readable member when the source's copy fails.
    /// Returns false when the chunk is gone everywhere since it was listed (garbage of a failed
    /// write, deleted meanwhile): nothing to copy.
    private static func copy(
        _ key: ChunkKey, master: MasterClient, info: ChunkInfo, from source: ChunkServerClient, to destination: ChunkServerClient, replacing: Bool
    ) async throws -> Bool {
        var data: ByteBuffer?
        var errors: [String] = []
        var asked = 1
        var vanished = 0
        do {
            let (bytes, crc) = try await source.getChecked(key)
            if crc == info.crc, bytes.readableBytes == Int(info.length) { data = bytes } else { errors.append("source copy differs from its listing") }
        } catch {
            if error.httpStatus == 404 { vanished += 1 }
            errors.append("\(error)")
        }
        if data == nil {
            // The source's copy is bad or gone: any other readable member with a copy that verifies will do.
            let members = (try? await master.snapshot())?.groups.first { $0.id == key.group }?.members ?? []
            for member in members where member.status.isReadable && master.transport.url(member.addr) != source.service.baseURL {
                asked += 1
                do {
                    let (bytes, crc) = try await ChunkServerClient(baseURL: member.addr, transport: master.transport).getChecked(key)
                    guard crc == info.crc, bytes.readableBytes == Int(info.length) else { continue }
                    data = bytes
                    break
                } catch {
                    if error.httpStatus == 404 { vanished += 1 }
                }
            }
        }
        guard let data else {
            if vanished == asked { return false }
            throw TransferError(description: errors.joined(separator: "; "))
        }
        if replacing { try? await destination.delete(key) }
        let stored = try await destination.put(key, data: data, crc: info.crc)
        guard stored.crc == info.crc else { throw TransferError(description: "destination stored CRC \(CRCFormat.hex(stored.crc))") }
        return true
    }
}

/// Shared by the copy workers of a pass.
final class CopyCounters: Sendable {
    /// Index of the next chunk to take.
    let next = Atomic<Int>(0)
    /// Chunks finished this pass.
    let done = Atomic<Int>(0)
    /// Bytes copied in all passes.
    let copied = Atomic<UInt64>(0)

    func startPass() {
        next.store(0, ordering: .relaxed)
        done.store(0, ordering: .relaxed)
    }
}

struct TransferError: Error, CustomStringConvertible {
    let description: String
}

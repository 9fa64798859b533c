import CoreMetrics
import Logging
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore
import Synchronization

/// The leading master's repairer: copies each chunk a member reports damaged (its scrub or a
/// read failed the CRC) from a member whose copy reads clean, as `chunktool repair` would, and
/// reports a chunk no member holds intact as lost, with the blobs that use it. Every
/// `compareEvery` it compares each group's members by range digests (``ReplicaComparison``) and
/// copies back the chunks a member misses that the others hold.
///
/// It works one chunk at a time, paced by `--recovery-rate`, and shows itself as a `repair` job
/// while it works; every copy and every loss goes to the event log. It keeps nothing on disk: the
/// chunkservers keep listing their damaged chunks (across their restarts too) until a good copy
/// is put over them, so a new leader picks up where the last one stopped.
final class AutoRepairer: Sendable {
    let master: ChunkMaster
    let transport: ClusterTransport
    /// Bytes per second the copies may take at most; nil: no limit.
    let bytesPerSecond: Int?
    let logger: Logger
    /// When a repair of a chunk on a member last failed: it waits a while before the next try.
    private let backoff = Mutex<[Target: ContinuousClock.Instant]>([:])
    private let jobs = Atomic<Int>(0)
    /// When the lost chunks were last read again: every 30 s, not every round.
    private let lostChecked = Mutex<ContinuousClock.Instant?>(nil)
    /// How often each group's members are compared; nil: never.
    let compareEvery: Duration?
    /// Chunks younger than this are left out of a comparison.
    let compareMinAge: Duration
    /// When each group's members were last compared.
    private let compared = Mutex<[UInt32: ContinuousClock.Instant]>([:])

    /// One copy of a chunk on one member.
    struct Target: Hashable, Sendable {
        var key: ChunkKey
        var serverId: String
    }

    init(master: ChunkMaster, transport: ClusterTransport, bytesPerSecond: Int?, compareEvery: Duration? = nil, compareMinAge: Duration = .seconds(60), logger: Logger) {
        self.master = master
        self.transport = transport
        self.bytesPerSecond = bytesPerSecond
        self.compareEvery = compareEvery
        self.compareMinAge = compareMinAge
        self.logger = logger
    }

    /// One round (every two seconds while this master leads): repair what members report
    /// damaged, compare the members of a group whose turn it is, then look again at the lost
    /// chunks.
    func round() async {
        let snapshot = master.snapshot()
        let work = damagedCopies(in: snapshot)
        if !work.isEmpty { await repair(work, in: snapshot, reason: "damaged") }
        if let group = groupDueForComparison(in: snapshot) { await compare(group, in: snapshot) }
        await recheckLost(snapshot)
    }

    /// The next group to compare: one whose members all serve and none is being filled or
    /// drained, not compared for `compareEvery` (since this master started to lead, at first).
    func groupDueForComparison(in snapshot: ClusterSnapshot) -> GroupSnapshot? {
        guard let compareEvery else { return nil }
        let now = ContinuousClock.now
        return compared.withLock { last in
            let due = snapshot.groups.filter { group in
                group.members.count > 1 && group.draining != true
                    && group.members.allSatisfy { $0.status.isServing && $0.status != .transferring }
                    && last[group.id].map { now - $0 >= compareEvery } ?? true
            }.min { (last[$0.id] ?? now, $0.id) < (last[$1.id] ?? now, $1.id) }
            if let due { last[due.id] = now }
            return due
        }
    }

    /// Compares `group`'s members and copies back what one misses and the others hold. A
    /// difference counts only when it is still there two seconds later (a collection or a move
    /// deletes a chunk from the members one after another). Chunks younger than `compareMinAge`
    /// (a minute) are left out: a write may still be on its way along the chain.
    func compare(_ group: GroupSnapshot, in snapshot: ClusterSnapshot) async {
        let members = group.members.map {
            ReplicaComparison.Member(id: $0.id, client: ChunkServerClient(baseURL: $0.addr, timeout: .seconds(30), transport: transport))
        }
        let comparison = ReplicaComparison(group: group.id, members: members, minAgeMs: compareMinAge.milliseconds, confirmAfter: .seconds(2))
        guard let report = try? await comparison.run() else { return }
        let missing = report.members.flatMap { member in member.missing.map { Target(key: ChunkKey(group: group.id, fileId: $0), serverId: member.id) } }
        let differing = report.members.filter { !$0.crcDiffers.isEmpty || !$0.extra.isEmpty }
        if !missing.isEmpty || !differing.isEmpty {
            let summary = report.members.filter { !$0.clean }
                .map { "\($0.id): \($0.missing.count) missing, \($0.extra.count) extra, \($0.crcDiffers.count) with another CRC" }
            logger.info("group \(group.id) compared in \(report.requests) requests: \(summary.joined(separator: "; "))")
        }
        if !missing.isEmpty { await repair(missing, in: snapshot, reason: "missing") }
    }

    /// Every damaged copy an up member lists, but those whose last try failed lately.
    func damagedCopies(in snapshot: ClusterSnapshot) -> [Target] {
        let now = ContinuousClock.now
        let waiting = backoff.withLock { b in
            b = b.filter { now - $0.value < .seconds(30) }
            return Set(b.keys)
        }
        return snapshot.groups.flatMap { group in
            group.members.filter(\.status.isServing).flatMap { member in
                (member.scrub?.damaged ?? []).map { Target(key: ChunkKey(group: group.id, fileId: $0), serverId: member.id) }
            }
        }.filter { !waiting.contains($0) }
    }

    /// Repairs `targets` one by one as one job, so the console shows the work while it runs.
    func repair(_ targets: [Target], in snapshot: ClusterSnapshot, reason: String) async {
        let id = "auto-repair-\(jobs.add(1, ordering: .relaxed).newValue)"
        let groups = Set(targets.map(\.key.group)).sorted().map(String.init).joined(separator: ",")
        var job = JobReport(id: id, kind: "repair", target: "group \(groups) (\(reason) chunks)", state: .running, done: 0, total: targets.count, bytes: 0)
        await master.jobReport(job, actor: "master")
        var repaired = 0
        for target in targets {
            guard master.leadership.isLeader, !Task.isCancelled else { break }
            guard let group = snapshot.groups.first(where: { $0.id == target.key.group }) else { continue }
            if let bytes = await repair(target, in: group, reason: reason) {
                repaired += 1
                job.bytes += bytes
                await pace(bytes)
            }
            job.done += 1
            await master.jobReport(job, actor: "master")
        }
        job.state = repaired == targets.count ? .finished : .failed
        job.message = "\(repaired) of \(targets.count) chunks repaired"
        await master.jobReport(job, actor: "master")
    }

    /// Repairs one copy; returns the bytes copied, or nil when it was not repaired (already
    /// clean, lost, or a member failed: it is tried again later).
    private func repair(_ target: Target, in group: GroupSnapshot, reason: String) async -> UInt64? {
        guard let member = group.members.first(where: { $0.id == target.serverId }) else { return nil }
        let destination = ChunkServerClient(baseURL: member.addr, timeout: .seconds(30), transport: transport)
        // The member's list may be a heartbeat old: a copy that reads clean now needs nothing.
        if reason == "damaged", (try? await destination.get(target.key)) != nil { return nil }
        var outcomes: [String] = ["\(member.id): \(reason)"]
        for source in group.members where source.id != member.id && source.status.isServing {
            let copy: (data: ByteBuffer, crc: UInt32)
            do {
                copy = try await ChunkServerClient(baseURL: source.addr, timeout: .seconds(30), transport: transport).getChecked(target.key)
            } catch {
                outcomes.append("\(source.id): \(error)")
                continue
            }
            do {
                try await replace(target.key, on: destination, with: copy, damaged: reason == "damaged")
            } catch {
                // A good copy exists, so nothing is lost: the member could not take it (a disk
                // failing writes turns it ERR). Tried again after the backoff.
                backoff.withLock { $0[target] = .now }
                logger.warning("chunk \(target.key) on \(member.id) not repaired: it did not take the copy from \(source.id): \(error)")
                return nil
            }
            master.metrics.chunksRepaired.increment()
            await master.recordEvent(
                kind: "chunk-repaired", serverId: member.id, group: group.id,
                message: "chunk \(target.key) repaired on \(member.id) from \(source.id) (it was \(reason))")
            return UInt64(copy.data.readableBytes)
        }
        backoff.withLock { $0[target] = .now }
        // Lost only when every other member answered and none had it intact; an unreachable
        // member may still hold a good copy. A missing chunk no other member serves either was
        // deleted meanwhile (collected or moved); one they hold damaged, their scrubs report.
        let others = group.members.filter { $0.id != member.id }
        if reason == "damaged", others.allSatisfy(\.status.isServing) {
            await reportLost(target.key, why: outcomes.joined(separator: "; "))
        } else {
            logger.warning("chunk \(target.key) on \(member.id) not repaired yet: \(outcomes.joined(separator: "; "))")
        }
        return nil
    }

    /// Puts a good copy on `destination`, deleting its damaged one first: a put of the same bytes
    /// over a copy that is still indexed would be taken for a retry and change nothing.
    private func replace(
        _ key: ChunkKey, on destination: ChunkServerClient, with copy: (data: ByteBuffer, crc: UInt32), damaged: Bool
    ) async throws(ServiceError) {
        if damaged {
            do { try await destination.delete(key) } catch .status(_, 404, _) {}
        }
        _ = try await destination.put(key, data: copy.data, crc: copy.crc)
    }

    /// Records a chunk no member holds intact, loudly, with the blobs that use it.
    private func reportLost(_ key: ChunkKey, why: String) async {
        guard master.lost.withLock({ $0[key] == nil }) else { return }
        let usedBy = await ChunkUsersLookup(master: master, transport: transport).users(of: key)
        let lost = LostChunk(group: key.group, fileId: key.fileId, foundMs: currentTimeMillis(), why: why, usedBy: usedBy)
        master.lost.withLock { $0[key] = lost }
        let users = usedBy.map { $0.isEmpty ? "no blob uses it" : "used by " + $0.joined(separator: ", ") } ?? "its users unknown (no metaserver answered)"
        await master.recordEvent(kind: "chunk-lost", serverId: nil, group: key.group, message: "chunk \(key) LOST: no member holds an intact copy (\(why)); \(users)")
    }

    /// A lost chunk stays listed until a member reads it clean again or no member holds it.
    private func recheckLost(_ snapshot: ClusterSnapshot) async {
        let due = lostChecked.withLock { last in
            guard last.map({ ContinuousClock.now - $0 >= .seconds(30) }) ?? true else { return false }
            last = .now
            return true
        }
        guard due else { return }
        for key in master.lost.withLock({ Array($0.keys) }) {
            guard let group = snapshot.groups.first(where: { $0.id == key.group }) else { continue }
            var held = false
            var intact = false
            for member in group.members where member.status.isServing {
                let client = ChunkServerClient(baseURL: member.addr, timeout: .seconds(30), transport: transport)
                do {
                    _ = try await client.get(key)
                    intact = true
                } catch .status(_, 404, _) {
                    // Not held here.
                } catch {
                    held = true
                }
            }
            // Gone only when every member answered that it does not hold it.
            guard intact || (!held && group.members.allSatisfy(\.status.isServing)) else { continue }
            master.lost.withLock { _ = $0.removeValue(forKey: key) }
            let message = intact ? "chunk \(key) reads clean on a member again: no longer lost" : "chunk \(key) is gone from every member: no longer lost"
            await master.recordEvent(kind: "chunk-found", serverId: nil, group: key.group, message: message)
        }
    }

    /// Waits as long as `bytes` take at the configured rate.
    private func pace(_ bytes: UInt64) async {
        guard let bytesPerSecond, bytesPerSecond > 0 else { return }
        try? await Task.sleep(for: .seconds(Double(bytes) / Double(bytesPerSecond)))
    }
}

extension ServerStatus {
    /// Whether the server answers reads: up, in any state but starting, down or offline.
    var isServing: Bool {
        switch self {
        case .readWrite, .readOnly, .transferring, .error: true
        case .initializing, .down, .offline: false
        }
    }
}

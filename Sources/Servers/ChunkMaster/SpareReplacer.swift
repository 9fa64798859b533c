import Logging
import NIOCore
import SpeedyClients
import SpeedyCore
import Synchronization

/// The leading master's replacement of members that stay down, with no person involved:
///
/// 1. A member `DOWN` for longer than `--replace-after`, in a group with no replacement under
///    way, gets a waiting spare in its place: the spare becomes a `TRANSFERRING` member of the
///    group (saved, and in the event log), the group turns recovering (writable, the spare
///    taking the dead member's writes) and the dead member is fenced `OFFLINE` for it.
/// 2. A spare that is `TRANSFERRING` in a group is filled from a readable member
///    (``GroupFill``, paced by `--recovery-rate`), pass after pass until a pass after the
///    imageservers have seen it finds nothing left, then the two listings are compared.
/// 3. When they agree, the members fenced for it are removed and the spare is set `RW`: the
///    group is healthy again.
///
/// Everything it needs to go on is in the saved map (the spare's group and status, who is
/// fenced for whom) and in the spare's listing, so it resumes after a restart of the master,
/// the spare or the source. A member that comes back before step 1 is simply up again.
final class SpareReplacer: Sendable {
    let master: ChunkMaster
    let transport: ClusterTransport
    let after: Duration
    let bytesPerSecond: Int?
    let logger: Logger
    /// Fills under way, by spare id.
    private let filling = Mutex<[String: Task<Void, Never>]>([:])
    /// When a fill of a spare last failed: the next try waits a little.
    private let lastFailure = Mutex<[String: ContinuousClock.Instant]>([:])
    private let attempts = Atomic<Int>(0)
    /// How long imageservers may go on with a map from before the spare joined (they fetch one
    /// every second): a pass that finds nothing before that is not the last.
    static let settle = Duration.seconds(3)

    init(master: ChunkMaster, transport: ClusterTransport, after: Duration, bytesPerSecond: Int?, logger: Logger) {
        self.master = master
        self.transport = transport
        self.after = after
        self.bytesPerSecond = bytesPerSecond
        self.logger = logger
    }

    /// One round (every second while this master leads): steps 1 and 2.
    func round() async {
        await assignSpares()
        startFills()
    }

    /// Stops the fills under way (the master is stopping); the next leader resumes them.
    func stop() {
        for task in filling.withLock({ Array($0.values) }) { task.cancel() }
    }

    /// Step 1: gives each member that stayed down too long a spare.
    func assignSpares() async {
        let due = master.replacementsDue(afterMs: after.milliseconds)
        for replacement in due {
            do {
                _ = try await master.administer(group: replacement.group, by: "master") { map throws(ClusterMap.AdminError) in
                    try map.assignSpare(replacement.spare, to: replacement.group, replacing: replacement.dead)
                }
            } catch {
                logger.warning("could not give spare \(replacement.spare) to group \(replacement.group): \(error)")
            }
        }
    }

    /// Step 2: starts a fill for each spare `TRANSFERRING` in a group that has none running.
    func startFills() {
        let snapshot = master.snapshot()
        for group in snapshot.groups {
            for spare in group.members where spare.status == .transferring && spare.spare == true {
                let recentlyFailed = lastFailure.withLock { $0[spare.id].map { ContinuousClock.now - $0 < .seconds(5) } ?? false }
                guard !recentlyFailed else { continue }
                filling.withLock { fills in
                    guard fills[spare.id] == nil else { return }
                    fills[spare.id] = Task {
                        await self.fill(spare: spare.id, group: group.id)
                        _ = self.filling.withLock { $0.removeValue(forKey: spare.id) }
                    }
                }
            }
        }
    }

    /// Steps 2 and 3 for one spare, as a `transfer` job the console shows.
    func fill(spare: String, group: UInt32) async {
        // The spare takes its group with the reply to its next heartbeat: until then there is
        // nothing to fill.
        guard let addr = master.snapshot().groups.first(where: { $0.id == group })?.members.first(where: { $0.id == spare })?.addr,
            (try? await ChunkServerClient(baseURL: addr, timeout: .seconds(5), transport: transport).stats())?.group == group
        else { return }
        let started = ContinuousClock.now
        // A job that ended stays ended on the board: each attempt is a job of its own.
        let attempt = attempts.add(1, ordering: .relaxed).newValue
        var job = JobReport(id: "fill-\(spare)-\(attempt)", kind: "transfer", target: "group \(group): spare \(spare)", state: .running, done: 0, total: 0, bytes: 0)
        await master.jobReport(job, actor: "master")
        do {
            let (copied, bytes) = try await copyUntilSettled(spare: spare, group: group, job: &job)
            let retired = try await finish(spare: spare, group: group)
            let seconds = max(0.001, Double((ContinuousClock.now - started).milliseconds) / 1000)
            let message = "spare \(spare) filled in group \(group): \(copied) chunks, \(ByteSize.format(bytes)) in \(Int(seconds)) s (\(ByteSize.format(UInt64(Double(bytes) / seconds)))/s); it replaces \(retired.isEmpty ? "no one" : retired.joined(separator: ", "))"
            await master.recordEvent(kind: "spare-filled", serverId: spare, group: group, message: message)
            job.state = .finished
            job.message = message
        } catch {
            lastFailure.withLock { $0[spare] = .now }
            logger.warning("fill of spare \(spare) in group \(group) stopped, to be tried again: \(error)")
            job.state = .failed
            job.message = "\(error); trying again"
        }
        await master.jobReport(job, actor: "master")
    }

    /// Copies passes until one after the settle time finds nothing, then checks the listings.
    private func copyUntilSettled(spare: String, group: UInt32, job: inout JobReport) async throws -> (Int, UInt64) {
        let since = ContinuousClock.now
        var copied = 0
        var bytes: UInt64 = 0
        for _ in 0..<50 {
            try Task.checkCancellation()
            let fill = try makeFill(spare: spare, group: group)
            let base = bytes
            let reporting = job
            let pass = try await fill.pass { done, total, passBytes in
                var report = reporting
                (report.done, report.total, report.bytes) = (done, total, base + passBytes)
                await self.master.jobReport(report, actor: "master")
            }
            copied += pass.copied
            bytes += pass.bytes
            (job.done, job.total, job.bytes) = (pass.copied, pass.todo, bytes)
            guard pass.failures.isEmpty else { throw FillError(description: pass.failures.prefix(3).joined(separator: "; ")) }
            if pass.todo == 0, ContinuousClock.now - since >= Self.settle {
                let left = try await fill.missing()
                guard left.isEmpty else { continue }
                return (copied, bytes)
            }
            if pass.todo == 0 { try await Task.sleep(for: .milliseconds(500)) }
        }
        throw FillError(description: "the source keeps gaining chunks faster than they are copied (50 passes)")
    }

    /// The fill of `spare` from the group's best readable member (an `RW` one, the least busy).
    private func makeFill(spare: String, group: UInt32) throws -> GroupFill {
        guard let members = master.snapshot().groups.first(where: { $0.id == group })?.members,
            let destination = members.first(where: { $0.id == spare && $0.status == .transferring })
        else { throw FillError(description: "spare \(spare) is no longer TRANSFERRING in group \(group)") }
        let readable = members.filter { $0.id != spare && $0.status.isReadable }
        guard let source = readable.min(by: { ($0.status == .readWrite ? 0 : 1, $0.readBytesPerSec) < ($1.status == .readWrite ? 0 : 1, $1.readBytesPerSec) })
        else { throw FillError(description: "group \(group) has no readable member to copy from") }
        func client(_ m: MemberSnapshot) -> ChunkServerClient { ChunkServerClient(baseURL: m.addr, timeout: .seconds(30), transport: transport) }
        return GroupFill(
            group: group, source: client(source), destination: client(destination), others: readable.filter { $0.id != source.id }.map(client),
            bytesPerSecond: bytesPerSecond)
    }

    /// Step 3: removes the one member the spare replaces and sets the spare `RW`, in one saved
    /// change. When several were fenced for it (two died at once), the longest silent goes; the
    /// others stay fenced `OFFLINE` and get spares of their own, so the group keeps its size.
    private func finish(spare: String, group: UInt32) async throws -> [String] {
        let fenced = master.snapshot().groups.first { $0.id == group }?.members.filter { $0.fencedBy == spare } ?? []
        // Never heard from (-1) counts as the longest silence.
        let replaced = fenced.max { silence($0) < silence($1) }.map(\.id)
        _ = try await master.administer(group: group, by: "master") { map throws(ClusterMap.AdminError) in
            let retired = try replaced.map { id throws(ClusterMap.AdminError) in try map.retire(id) } ?? []
            return retired + (try map.setStatus(of: spare, to: .readWrite))
        }
        return replaced.map { [$0] } ?? []
    }

    private func silence(_ member: MemberSnapshot) -> Int64 {
        member.lastHeartbeatAgeMs < 0 ? .max : member.lastHeartbeatAgeMs
    }

    struct FillError: Error, CustomStringConvertible {
        let description: String
    }
}

extension ChunkMaster {
    /// The replacements due now (see ``ClusterMap/replacementsDue(afterMs:nowMs:allowSameZone:)``).
    func replacementsDue(afterMs: Int64) -> [ClusterMap.Replacement] {
        let allowSameZone = configuration.allowSameZone
        let now = (clock.now - epoch).milliseconds
        return map.withLock { $0.replacementsDue(afterMs: afterMs, nowMs: now, allowSameZone: allowSameZone) }
    }
}

import NIOCore
import Logging
import SpeedyClients
import SpeedyCore

/// What a collection does and how careful it is.
public struct GarbageCollectionOptions: Sendable {
    /// Manifests and blobs last referenced more recently than this are kept.
    public var grace: Duration
    /// Chunks no metadata refers to are deleted only once a chunkserver has held them this long.
    /// It must be longer than the imageservers' hold deadline (docs/gc.md).
    public var chunkGrace: Duration
    /// Upload sessions idle this long are ended and their chunks deleted.
    public var uploadExpiry: Duration
    /// Report what would go; delete nothing.
    public var dryRun: Bool
    /// Afterwards, ask every chunkserver to compact volumes under its threshold.
    public var compact: Bool

    /// The defaults: an hour of grace for everything, uploads idle for a day.
    public init(
        grace: Duration = .seconds(3600), chunkGrace: Duration? = nil, uploadExpiry: Duration = .seconds(24 * 3600),
        dryRun: Bool = false, compact: Bool = false
    ) {
        self.grace = grace
        self.chunkGrace = chunkGrace ?? max(grace, Self.minimumDefaultChunkGrace)
        self.uploadExpiry = uploadExpiry
        self.dryRun = dryRun
        self.compact = compact
    }

    /// The chunk grace when none is given: well past the imageservers' default hold deadline (60 s).
    public static let minimumDefaultChunkGrace: Duration = .seconds(600)
}

/// What one collection found and freed.
public struct GarbageCollectionReport: Sendable, Codable, Equatable {
    /// Per group: chunks deleted and the bytes their replicas gave back.
    public struct Group: Sendable, Codable, Equatable {
        public var group: UInt32
        /// Chunks of swept blobs and expired uploads deleted.
        public var chunksDeleted: Int
        /// Chunks no metadata referred to (failed writes), deleted.
        public var orphansDeleted: Int
        /// Bytes of replicas deleted on the group's chunkservers.
        public var bytesFreed: UInt64
    }

    public var dryRun: Bool
    public var manifests: Int
    public var manifestBytes: Int64
    public var blobs: Int
    /// Bytes of the swept blobs (one copy).
    public var blobBytes: UInt64
    public var expiredUploads: Int
    /// Chunks deleted (or, in a dry run, that would be), orphans included.
    public var chunks: Int
    /// Bytes of replicas deleted on chunkservers.
    public var bytesFreed: UInt64
    /// Chunks still queued because a member that should hold them did not answer; the next run retries.
    public var chunksPending: Int
    public var groups: [Group]
    /// Volumes compacted afterwards (with `compact`), and the bytes of volume files they gave back.
    public var volumesCompacted: Int
    public var bytesCompacted: UInt64
    /// Problems that did not stop the collection.
    public var warnings: [String]
    public var durationMs: Int64

    /// Whether the run deleted or compacted anything.
    public var freedAnything: Bool { manifests + blobs + expiredUploads + chunks + volumesCompacted > 0 }

    /// One line for people and the event log.
    public var summary: String {
        let verb = dryRun ? "would free" : "freed"
        return "gc \(verb) \(manifests) manifests, \(blobs) blobs (\(ByteSize.format(blobBytes))), \(expiredUploads) expired uploads, "
            + "\(chunks) chunks (\(ByteSize.format(bytesFreed)) of replicas)"
            + (volumesCompacted > 0 ? "; \(volumesCompacted) volumes compacted (\(ByteSize.format(bytesCompacted)) given back)" : "")
    }
}

/// Why a collection could not run.
public enum GarbageCollectionError: Error, Sendable, CustomStringConvertible {
    case master(String)
    case metadata(MetadataError)

    public var description: String {
        switch self {
        case .master(let reason): "cannot read the cluster map: \(reason)"
        case .metadata(let error): "metaserver: \(error)"
        }
    }
}

/// Finds and deletes garbage while the cluster serves (docs/gc.md): metadata first, in
/// transactions that re-check every condition, then the chunks the metadata no longer names.
/// A crash anywhere leaves at most garbage for the next run.
public struct GarbageCollector: Sendable {
    let meta: any MetadataStore
    let master: MasterClient
    /// How the chunkservers are called (the secret, the CA).
    let cluster: ClusterTransport
    let logger: Logger

    /// Deletes run this many at a time.
    static let parallelDeletes = 16

    /// Creates a collector over a metadata store (a ``MetaClient`` or the metaserver's own) and the
    /// master; it calls the chunkservers through `cluster`.
    public init(meta: any MetadataStore, master: MasterClient, cluster: ClusterTransport, logger: Logger) {
        self.meta = meta
        self.master = master
        self.cluster = cluster
        self.logger = logger
    }

    /// Runs one collection; `progress` hears each phase as it starts (its number of five, its name).
    public func run(
        _ options: GarbageCollectionOptions, progress: @Sendable (Int, Int, String) -> Void = { _, _, _ in }
    ) async throws(GarbageCollectionError) -> GarbageCollectionReport {
        let start = ContinuousClock.now
        var report = GarbageCollectionReport(
            dryRun: options.dryRun, manifests: 0, manifestBytes: 0, blobs: 0, blobBytes: 0, expiredUploads: 0, chunks: 0,
            bytesFreed: 0, chunksPending: 0, groups: [], volumesCompacted: 0, bytesCompacted: 0, warnings: [], durationMs: 0)
        let snapshot: ClusterSnapshot
        do {
            snapshot = try await master.snapshot()
        } catch {
            throw .master("\(error)")
        }
        var tally = DeletionTally(snapshot: snapshot)
        do throws(MetadataError) {
            if !options.dryRun {
                progress(1, 5, "expiring idle uploads")
                try await expireUploads(options, &report, &tally)
            }
            progress(2, 5, "sweeping manifests and blobs")
            try await sweep(options, &report, &tally)
            if !options.dryRun {
                progress(3, 5, "deleting chunks of swept blobs")
                try await deleteQueued(&report, &tally)
            }
            progress(4, 5, "looking for chunks no metadata refers to")
            try await deleteOrphans(options, snapshot, &report, &tally)
        } catch {
            throw .metadata(error)
        }
        report.groups = tally.groups.keys.sorted().map { tally.groups[$0]! }
        report.chunks = report.groups.reduce(0) { $0 + $1.chunksDeleted + $1.orphansDeleted }
        report.bytesFreed = report.groups.reduce(0) { $0 + $1.bytesFreed }
        if options.compact && !options.dryRun {
            progress(5, 5, "compacting volumes")
            await compact(snapshot, &report)
        }
        report.warnings += tally.warnings
        report.durationMs = Int64((ContinuousClock.now - start) / .milliseconds(1))
        // A scheduled run that found nothing says so in its log, not in the cluster's event log.
        if !options.dryRun {
            logger.notice("\(report.summary)")
            if report.freedAnything {
                try? await master.recordEvent(EventReport(kind: "gc", message: report.summary + " in \(report.durationMs) ms"))
            }
        }
        return report
    }

    // MARK: Steps

    private func expireUploads(_ options: GarbageCollectionOptions, _ report: inout GarbageCollectionReport, _ tally: inout DeletionTally) async throws(MetadataError) {
        let cutoff = currentTimeMillis() - Int64(options.uploadExpiry / .milliseconds(1))
        while true {
            let expired = try await meta.expireUploads(idleSinceMs: cutoff, limit: 1000)
            report.expiredUploads += expired.count
            // Deleted directly: a crash now leaves them to the orphan sweep.
            _ = await deleteReplicas(expired.flatMap(\.chunks), &tally, orphans: false)
            if expired.count < 1000 { return }
        }
    }

    private func sweep(_ options: GarbageCollectionOptions, _ report: inout GarbageCollectionReport, _ tally: inout DeletionTally) async throws(MetadataError) {
        let graceMs = Int64(options.grace / .milliseconds(1))
        let limit = options.dryRun ? 100_000 : 1000
        while true {
            let swept = try await meta.sweep(graceMs: graceMs, limit: limit, dryRun: options.dryRun)
            report.manifests += swept.manifests.count
            report.manifestBytes += swept.manifests.reduce(0) { $0 + $1.size }
            report.blobs += swept.blobs.count
            report.blobBytes += swept.blobs.reduce(0) { $0 + $1.size }
            if options.dryRun {
                for chunk in swept.blobs.flatMap(\.chunks) + swept.movedChunks {
                    tally.count(chunk, replicas: tally.replicas(of: chunk.group), orphan: false)
                }
                return
            }
            if swept.count < limit { return }
        }
    }

    /// Deletes the queued chunks of swept blobs, forgetting each once no member that should
    /// answer still holds it.
    private func deleteQueued(_ report: inout GarbageCollectionReport, _ tally: inout DeletionTally) async throws(MetadataError) {
        while true {
            let queued = try await meta.chunkDeletions(limit: 1000)
            if queued.isEmpty { return }
            let done = await deleteReplicas(queued, &tally, orphans: false)
            try await meta.forgetChunkDeletions(done.map(\.key))
            report.chunksPending += queued.count - done.count
            // What is left waits for a member to come back: the next run retries it.
            if done.count < queued.count || queued.count < 1000 { return }
        }
    }

    /// Per group: the chunks each member has held longer than the chunk grace, minus every chunk
    /// the metadata refers to, read after the listings (a chunk referenced meanwhile is kept).
    private func deleteOrphans(
        _ options: GarbageCollectionOptions, _ snapshot: ClusterSnapshot, _ report: inout GarbageCollectionReport, _ tally: inout DeletionTally
    ) async throws(MetadataError) {
        let graceMs = Int64(options.chunkGrace / .milliseconds(1))
        for group in snapshot.groups {
            var candidates: [(addr: String, chunk: ChunkRef)] = []
            for member in group.members where member.status.isReadable || member.status == .transferring {
                do {
                    for (info, age) in try await ChunkServerClient(baseURL: member.addr, transport: cluster).listAllWithAges(group: group.id)
                    where age >= graceMs {
                        candidates.append((member.addr, ChunkRef(group: group.id, fileId: info.fileId, length: info.length, crc: info.crc)))
                    }
                } catch {
                    tally.warnings.append("cannot list group \(group.id) on \(member.id): \(error)")
                }
            }
            if candidates.isEmpty { continue }
            let referenced = try await references(in: group.id)
            let orphans = candidates.filter { !referenced.contains($0.chunk.fileId) }
            if options.dryRun {
                for orphan in orphans { tally.count(orphan.chunk, replicas: 1, orphan: true) }
                continue
            }
            await deleteOn(orphans, &tally, orphans: true)
        }
    }

    private func references(in group: UInt32) async throws(MetadataError) -> Set<UInt64> {
        var ids: Set<UInt64> = []
        var after: UInt64 = 0
        while true {
            let page = try await meta.chunkReferences(group: group, after: after, limit: 5000)
            ids.formUnion(page.references.map(\.fileId))
            guard let next = page.nextAfter else { return ids }
            after = next
        }
    }

    /// Every readable chunkserver compacts at once (each paces itself): one disk each.
    private func compact(_ snapshot: ClusterSnapshot, _ report: inout GarbageCollectionReport) async {
        let cluster = self.cluster
        let results = await withTaskGroup(of: MemberCompaction.self) { group in
            for member in snapshot.groups.flatMap(\.members) where member.status.isReadable {
                group.addTask {
                    // Compacting a full volume at the default pace takes a while.
                    let client = ChunkServerClient(baseURL: member.addr, timeout: .hours(2), transport: cluster)
                    do {
                        return MemberCompaction(id: member.id, report: try await client.compact(), failure: nil)
                    } catch {
                        return MemberCompaction(id: member.id, report: nil, failure: "\(error)")
                    }
                }
            }
            var results: [MemberCompaction] = []
            for await result in group { results.append(result) }
            return results
        }
        for result in results {
            if let compacted = result.report {
                report.volumesCompacted += compacted.compacted.count
                report.bytesCompacted += compacted.compacted.reduce(0) { $0 + UInt64($1.bytesReclaimed) }
                if let error = compacted.error { report.warnings.append("compaction on \(result.id): \(error)") }
            }
            if let failure = result.failure { report.warnings.append("cannot compact \(result.id): \(failure)") }
        }
    }

    private struct MemberCompaction: Sendable {
        var id: String
        var report: VolumesReport?
        var failure: String?
    }

    // MARK: Deleting

    /// Deletes every replica of `chunks` from the members of their groups that should answer
    /// (a member that is down or offline keeps its copy; it is an orphan there later). Returns
    /// the chunks no answering member holds any more.
    private func deleteReplicas(_ chunks: [ChunkRef], _ tally: inout DeletionTally, orphans: Bool) async -> [ChunkRef] {
        let targets = chunks.flatMap { chunk in tally.members(of: chunk.group).map { (addr: $0, chunk: chunk) } }
        let failed = Set(await deleteOn(targets, &tally, orphans: orphans).map(\.key))
        return chunks.filter { !failed.contains($0.key) }
    }

    /// Deletes each chunk from its one address, `parallelDeletes` at a time; returns the chunks
    /// a member failed to delete. A member that no longer has it, or has other bytes under its
    /// key (the delete names the CRC), counts as done without freeing anything.
    @discardableResult
    private func deleteOn(_ targets: [(addr: String, chunk: ChunkRef)], _ tally: inout DeletionTally, orphans: Bool) async -> [ChunkRef] {
        let cluster = self.cluster
        var failed: [ChunkRef] = []
        var results: [(ChunkRef, DeleteOutcome)] = []
        await withTaskGroup(of: (ChunkRef, DeleteOutcome).self) { group in
            var next = 0
            func add() {
                let (addr, chunk) = targets[next]
                next += 1
                group.addTask {
                    do {
                        try await ChunkServerClient(baseURL: addr, transport: cluster).delete(chunk.key, ifCRC: chunk.crc)
                        return (chunk, .deleted)
                    } catch {
                        if case ServiceError.status(_, let code, _) = error, code == 404 || code == 412 { return (chunk, .absent) }
                        return (chunk, .failed("\(addr): \(error)"))
                    }
                }
            }
            while next < min(targets.count, Self.parallelDeletes) { add() }
            while let result = await group.next() {
                results.append(result)
                if next < targets.count { add() }
            }
        }
        for (chunk, outcome) in results {
            switch outcome {
            case .deleted: tally.count(chunk, replicas: 1, orphan: orphans)
            case .absent: break
            case .failed(let why):
                failed.append(chunk)
                if tally.warnings.count < 20 { tally.warnings.append("cannot delete chunk \(chunk.key): \(why)") }
            }
        }
        return failed
    }

    private enum DeleteOutcome: Sendable {
        case deleted, absent
        case failed(String)
    }
}

/// Counts per group while a collection deletes.
struct DeletionTally {
    let snapshot: ClusterSnapshot
    var groups: [UInt32: GarbageCollectionReport.Group] = [:]
    var warnings: [String] = []
    /// Chunks counted already (one chunk has a replica per member).
    private var seen: Set<ChunkKey> = []
    private var seenOrphans: Set<ChunkKey> = []

    init(snapshot: ClusterSnapshot) { self.snapshot = snapshot }

    /// Members of `group` expected to answer a delete. One that is down, offline or failing (its
    /// disk refuses writes, tombstones included) keeps its copy; the orphan sweep takes it once
    /// the member serves again.
    func members(of group: UInt32) -> [String] {
        snapshot.groups.first { $0.id == group }?.members.filter { $0.status.isReadable || $0.status == .transferring }.map(\.addr) ?? []
    }

    func replicas(of group: UInt32) -> Int { members(of: group).count }

    /// Adds `replicas` copies of `chunk`; the chunk itself is counted once.
    mutating func count(_ chunk: ChunkRef, replicas: Int, orphan: Bool) {
        var entry = groups[chunk.group] ?? .init(group: chunk.group, chunksDeleted: 0, orphansDeleted: 0, bytesFreed: 0)
        entry.bytesFreed += UInt64(chunk.length) * UInt64(replicas)
        if orphan {
            if seenOrphans.insert(chunk.key).inserted { entry.orphansDeleted += 1 }
        } else if seen.insert(chunk.key).inserted {
            entry.chunksDeleted += 1
        }
        groups[chunk.group] = entry
    }
}

import ArgumentParser
import CommandLineSupport
import Foundation
import SpeedyClients
import SpeedyCore
import ToolSupport

/// What `group drain` and `rebalance` share: where the metaserver is, and how fast to go.
struct MigrationOptions: ParsableArguments {
    @Option(help: "Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).")
    var meta: String?

    @Option(help: "Copy at most this many MB/s (0: as fast as the chunkservers go).")
    var rate: Double = 0

    @Option(help: "Chunks moved at once.")
    var concurrency = 4

    func validate() throws {
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be 1 to 64") }
    }

    /// The metaserver client, after flag, environment and default.
    func metaClient(_ transport: ClusterTransport) -> MetaClient {
        let url = MasterLocation.normalize(meta ?? ProcessInfo.processInfo.environment["SPEEDY_META"] ?? "http://127.0.0.1:8100", scheme: transport.scheme)
        return MetaClient(baseURL: url, transport: transport)
    }
}

/// A chunk blobs name, and which blobs (usually one).
struct MovableChunk: Sendable {
    var chunk: ChunkRef
    var owners: [Digest]
    /// Bytes of references it carries: what the group's usage loses when it moves.
    var referencedBytes: UInt64 { UInt64(chunk.length) * UInt64(owners.count) }
}

/// One group's chunk references as a drain or rebalance sees them.
struct GroupScan: Sendable {
    /// Chunks blobs name, by ascending file id.
    var movable: [MovableChunk] = []
    /// Upload sessions that hold or have appended chunks of the group: those chunks cannot move
    /// until the session ends (its blob is committed, then moved; or it expires).
    var uploads: Set<String> = []

    var bytes: UInt64 { movable.reduce(0) { $0 + UInt64($1.chunk.length) } }

    /// Reads every reference to `group` (pages of ``MetadataStore/chunkReferences(group:after:limit:)``).
    /// Chunks already moved (`moved:`) are the old copies garbage collection takes; they stay.
    static func read(group: UInt32, from meta: any MetadataStore) async throws(MetadataError) -> GroupScan {
        var scan = GroupScan()
        var byChunk: [ChunkRef: [Digest]] = [:]
        var after: UInt64 = 0
        while true {
            let page = try await meta.chunkReferences(group: group, after: after, limit: 5000)
            for reference in page.references {
                let chunk = ChunkRef(group: group, fileId: reference.fileId, length: reference.length, crc: reference.crc)
                if let digest = Digest(parsing: reference.owner) {
                    byChunk[chunk, default: []].append(digest)
                } else if let colon = reference.owner.firstIndex(of: ":"), ["upload", "held"].contains(reference.owner[..<colon]) {
                    scan.uploads.insert(String(reference.owner[reference.owner.index(after: colon)...]))
                }
            }
            guard let next = page.nextAfter else { break }
            after = next
        }
        scan.movable = byChunk.map { MovableChunk(chunk: $0.key, owners: $0.value) }.sorted { $0.chunk.fileId < $1.chunk.fileId }
        return scan
    }
}

/// One chunk to move, and where.
struct PlannedMove: Sendable {
    var chunk: MovableChunk
    var destination: UInt32
}

/// What moving a list of chunks did.
struct MigrationTally: Codable, Sendable {
    var chunksMoved = 0
    /// Payload bytes copied (one copy; every member of the destination wrote it).
    var bytesMoved: UInt64 = 0
    var blobsSwitched = 0
    /// Chunks no blob named any more by the time of their switch (swept or moved meanwhile).
    var chunksNoLongerUsed = 0
    /// Why each chunk that did not move did not (at most 50 kept).
    var failures: [String] = []
    var failed = 0

    mutating func add(_ other: MigrationTally) {
        chunksMoved += other.chunksMoved
        bytesMoved += other.bytesMoved
        blobsSwitched += other.blobsSwitched
        chunksNoLongerUsed += other.chunksNoLongerUsed
        failed += other.failed
        failures += other.failures.prefix(max(0, 50 - failures.count))
    }
}

/// Runs planned moves through a ``ChunkMover``, a few at a time, paced, with progress.
struct MigrationRun: Sendable {
    let mover: ChunkMover
    /// The cluster as the pass began: who to read from, who to write to.
    let snapshot: ClusterSnapshot
    let megabytesPerSecond: Double
    let concurrency: Int

    /// Moves `moves`; `progress` hears (chunks done, bytes copied) after each.
    func run(_ moves: [PlannedMove], progress: @escaping @Sendable (Int, UInt64) -> Void) async -> MigrationTally {
        let queue = MoveQueue(moves)
        let limiter = RateLimiter(megabytesPerSecond: megabytesPerSecond)
        return await withTaskGroup(of: MigrationTally.self) { workers in
            for _ in 0..<max(1, min(concurrency, moves.count)) {
                workers.addTask {
                    var tally = MigrationTally()
                    while let move = await queue.take() {
                        let one = await self.move(move)
                        tally.add(one)
                        let (done, bytes) = await queue.finished(one.bytesMoved)
                        progress(done, bytes)
                        try? await limiter.wait(after: bytes)
                    }
                    return tally
                }
            }
            return await workers.reduce(into: MigrationTally()) { $0.add($1) }
        }
    }

    private func move(_ planned: PlannedMove) async -> MigrationTally {
        var tally = MigrationTally()
        let chunk = planned.chunk.chunk
        guard let destination = snapshot.groups.first(where: { $0.id == planned.destination }) else {
            tally.failed = 1
            tally.failures = ["chunk \(chunk.key): group \(planned.destination) is gone"]
            return tally
        }
        do {
            switch try await mover.move(chunk, owners: planned.chunk.owners, readers: readers(of: chunk.group), to: destination) {
            case .moved(_, let blobs):
                (tally.chunksMoved, tally.bytesMoved, tally.blobsSwitched) = (1, UInt64(chunk.length), blobs)
            case .unused:
                tally.chunksNoLongerUsed = 1
            }
        } catch {
            tally.failed = 1
            tally.failures = [error.description]
        }
        return tally
    }

    /// A group's members to read from: readable ones first, then any other (a read checks its CRC).
    private func readers(of group: UInt32) -> [String] {
        let members = snapshot.groups.first { $0.id == group }?.members ?? []
        return members.filter(\.status.isReadable).map(\.addr) + members.filter { !$0.status.isReadable }.map(\.addr)
    }
}

/// Hands each planned move to one worker, and counts what is done.
private actor MoveQueue {
    private var todo: ArraySlice<PlannedMove>
    private var done = 0
    private var bytes: UInt64 = 0

    init(_ moves: [PlannedMove]) { todo = moves[...] }

    func take() -> PlannedMove? { todo.popFirst() }

    /// Counts one more move of `moved` bytes; the totals so far.
    func finished(_ moved: UInt64) -> (Int, UInt64) {
        done += 1
        bytes += moved
        return (done, bytes)
    }
}

extension ClusterSnapshot {
    /// Groups new chunks may go to: writable, with members, not draining, not `excluding`.
    func destinations(excluding: UInt32? = nil) -> [GroupSnapshot] {
        groups.filter { $0.id != excluding && $0.state.isWritable && $0.draining != true && !$0.members.isEmpty }
    }
}

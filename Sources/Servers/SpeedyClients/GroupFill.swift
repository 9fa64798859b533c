import NIOCore
import SpeedyCore

/// Copies the chunks of a group that one member (the source) holds and another (the
/// destination, a new member being filled) lacks, checking each against its CRC on the way.
///
/// A pass lists both members and copies the difference, a few chunks at a time, paced to at
/// most `bytesPerSecond`. A chunk whose copy on the source fails is read from the other
/// members; one gone from every member since the listing (garbage deleted meanwhile) is
/// skipped. Copies are idempotent (the same bytes under the same key), so a fill stopped
/// anywhere, by a restart of either end or of the caller, goes on with the next pass.
public struct GroupFill: Sendable {
    /// The group filled.
    public var group: UInt32
    /// The member copied from, and the one filled.
    public var source: ChunkServerClient
    public var destination: ChunkServerClient
    /// Members to read a chunk from when the source's copy fails.
    public var others: [ChunkServerClient]
    /// Bytes per second at most; nil: as fast as the members go.
    public var bytesPerSecond: Int?
    /// Chunks copied at once.
    public var concurrency = 4

    /// What one pass did.
    public struct Pass: Sendable, Equatable {
        /// Chunks the destination lacked at the listing, and the ones copied.
        public var todo: Int
        public var copied: Int
        /// Payload bytes copied.
        public var bytes: UInt64
        /// Why each chunk that could not be copied was not.
        public var failures: [String]
    }

    /// Creates a fill.
    public init(group: UInt32, source: ChunkServerClient, destination: ChunkServerClient, others: [ChunkServerClient], bytesPerSecond: Int?) {
        self.group = group
        self.source = source
        self.destination = destination
        self.others = others
        self.bytesPerSecond = bytesPerSecond
    }

    /// The source's chunks the destination lacks, or holds with another length or CRC.
    public func missing() async throws(ServiceError) -> [ChunkInfo] {
        let have = try await source.listAll(group: group)
        let got = try await destination.listAll(group: group)
        return have.values.filter { info in got[info.fileId].map { $0.crc != info.crc || $0.length != info.length } ?? true }
            .sorted { $0.fileId < $1.fileId }
    }

    /// Lists, then copies what the destination lacks; `progress` hears (done, total, bytes) after
    /// each chunk.
    public func pass(progress: @escaping @Sendable (Int, Int, UInt64) async -> Void = { _, _, _ in }) async throws(ServiceError) -> Pass {
        let todo = try await missing()
        let pacer = Pacer(bytesPerSecond: bytesPerSecond)
        let outcomes = await withTaskGroup(of: [(UInt64, String?)].self) { workers in
            let next = ChunkQueue(todo)
            for _ in 0..<max(1, concurrency) {
                workers.addTask {
                    var outcomes: [(UInt64, String?)] = []
                    while let info = await next.take() {
                        let outcome = await copy(info)
                        outcomes.append(outcome)
                        let (done, bytes) = await pacer.add(outcome.1 == nil ? UInt64(info.length) : 0)
                        await progress(done, todo.count, bytes)
                    }
                    return outcomes
                }
            }
            return await workers.reduce(into: []) { $0 += $1 }
        }
        let failures = outcomes.compactMap(\.1).filter { !$0.isEmpty }
        let copied = outcomes.filter { $0.1 == nil }.count
        return Pass(todo: todo.count, copied: copied, bytes: await pacer.total, failures: failures)
    }

    /// Copies one chunk: nil when copied, "" when gone from every member, else why not.
    private func copy(_ info: ChunkInfo) async -> (UInt64, String?) {
        let key = ChunkKey(group: group, fileId: info.fileId)
        var errors: [String] = []
        var gone = 0
        for member in [source] + others {
            do {
                let (data, crc) = try await member.getChecked(key)
                guard crc == info.crc, data.readableBytes == Int(info.length) else {
                    errors.append("\(member.service.baseURL) holds another chunk under that id")
                    continue
                }
                // A copy left with other bytes (a torn earlier fill) is replaced.
                try? await destination.delete(key)
                _ = try await destination.put(key, data: data, crc: crc)
                return (info.fileId, nil)
            } catch {
                if error.httpStatus == 404 { gone += 1 }
                errors.append("\(error)")
            }
        }
        return (info.fileId, gone == others.count + 1 ? "" : "chunk \(key): " + errors.joined(separator: "; "))
    }
}

/// Hands out the chunks of a pass to the workers, each once.
private actor ChunkQueue {
    var todo: ArraySlice<ChunkInfo>
    init(_ todo: [ChunkInfo]) { self.todo = todo[...] }
    func take() -> ChunkInfo? { todo.popFirst() }
}

/// Keeps the bytes copied under a rate: each worker waits until the total so far is due.
private actor Pacer {
    let bytesPerSecond: Int?
    let started = ContinuousClock.now
    private(set) var total: UInt64 = 0
    private var done = 0

    init(bytesPerSecond: Int?) { self.bytesPerSecond = bytesPerSecond }

    /// Counts a finished chunk of `bytes` and waits until the total is due; returns the
    /// chunks finished and the bytes copied so far.
    func add(_ bytes: UInt64) async -> (Int, UInt64) {
        total += bytes
        done += 1
        let counts = (done, total)
        if let bytesPerSecond, bytesPerSecond > 0 {
            let due = started + .seconds(Double(total) / Double(bytesPerSecond))
            if due > .now { try? await Task.sleep(until: due) }
        }
        return counts
    }
}

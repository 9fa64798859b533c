import SpeedyCore
import Synchronization

/// A blob this agent is downloading now, as the clients and peers that follow the download see
/// it: which chunks are in the temporary file, which are on their way, and whether the whole
/// blob verified. Chunks arrive in any order (rarest first); a follower waits for the next one
/// it needs.
final class PartialBlob: Sendable {
    /// Where one chunk stands.
    enum ChunkState: Sendable, Equatable {
        case missing
        /// Claimed by a fetch of this agent.
        case fetching
        /// In the temporary file, its CRC checked.
        case held
    }

    private struct State {
        var chunks: [ChunkState]
        /// Bytes of each chunk in the file from the attempt in course (all of it once held).
        var available: [Int]
        /// Bumped each time an attempt's bytes are thrown away: a reader that saw another
        /// generation must not go on.
        var generations: [Int]
        /// Bumped on every change to a chunk, so a waiter never misses one.
        var versions: [Int]
        var failure: PeerError?
        var verified = false
        /// Waiters by chunk index; index `chunks.count` waits for the verdict on the whole blob.
        var waiters: [Int: [Int: CheckedContinuation<Void, any Error>]] = [:]
        var nextWaiter = 0
    }

    let digest: Digest
    let map: ChunkMap
    /// Byte offset of each chunk in the blob.
    let offsets: [UInt64]
    let file: CacheTempFile
    private let state: Mutex<State>

    /// A download of `map` into `file`, nothing held yet.
    init(digest: Digest, map: ChunkMap, file: CacheTempFile) {
        self.digest = digest
        self.map = map
        self.file = file
        var offsets: [UInt64] = []
        var offset: UInt64 = 0
        for entry in map.chunks {
            offsets.append(offset)
            offset += UInt64(entry.length)
        }
        self.offsets = offsets
        let count = map.chunks.count
        state = Mutex(State(
            chunks: Array(repeating: .missing, count: count), available: Array(repeating: 0, count: count),
            generations: Array(repeating: 0, count: count), versions: Array(repeating: 0, count: count)))
    }

    /// How many chunks the blob has.
    var count: Int { map.chunks.count }

    /// Claims the chunk `choose` picks among the states (it returns a missing one, or nil); the
    /// pick and the claim happen under one lock, so two fetches never claim the same chunk.
    func claim(_ choose: ([ChunkState]) -> Int?) -> Int? {
        state.withLock { state in
            guard state.failure == nil, let index = choose(state.chunks), state.chunks[index] == .missing else { return nil }
            state.chunks[index] = .fetching
            return index
        }
    }

    /// Whether any chunk is still missing (neither fetching nor held).
    var hasMissing: Bool { state.withLock { $0.chunks.contains(.missing) } }

    /// Records chunk `index` as written and checked, and wakes whoever waits for it.
    func markHeld(_ index: Int) {
        change(index) { state in
            state.chunks[index] = .held
            state.available[index] = Int(self.map.chunks[index].length)
        }
    }

    /// Records that the first `bytes` of chunk `index` are in the file (not checked yet: a peer
    /// reading them checks the chunk's CRC itself).
    func advance(_ index: Int, to bytes: Int) {
        change(index) { $0.available[index] = bytes }
    }

    /// Throws away the bytes of chunk `index` from a failed attempt: readers of them stop.
    func reset(_ index: Int) {
        change(index) { state in
            state.available[index] = 0
            state.generations[index] += 1
        }
    }

    /// What a reader of chunk `index` needs: its state, the bytes in the file, their generation,
    /// and the version to wait on for the next change.
    func progress(_ index: Int) -> (state: ChunkState, available: Int, generation: Int, version: Int) {
        state.withLock { ($0.chunks[index], $0.available[index], $0.generations[index], $0.versions[index]) }
    }

    /// Waits until chunk `index` changes from `version`; throws the download's failure.
    func waitChange(_ index: Int, from version: Int) async throws {
        try await waitFor(key: index) { $0.versions[index] != version }
    }

    private func change(_ index: Int, _ body: (inout State) -> Void) {
        resume(state.withLock { state in
            body(&state)
            state.versions[index] += 1
            return state.waiters.removeValue(forKey: index).map { Array($0.values) } ?? []
        }, with: nil)
    }

    /// Records that the whole blob hashed to its digest.
    func markVerified() {
        resume(state.withLock { state in
            state.verified = true
            return state.waiters.removeValue(forKey: state.chunks.count).map { Array($0.values) } ?? []
        }, with: nil)
    }

    /// Ends the download with `error`: every waiter, now and later, gets it.
    func fail(_ error: PeerError) {
        resume(state.withLock { state in
            if state.failure == nil { state.failure = error }
            let all = state.waiters.values.flatMap { Array($0.values) }
            state.waiters = [:]
            return all
        }, with: error)
    }

    /// The error the download ended with, if it failed.
    var failure: PeerError? { state.withLock { $0.failure } }

    /// The chunks held or on their way, as announced to the tracker (a peer asking for one still
    /// on its way waits for it).
    func announced() -> ChunkBitfield {
        state.withLock { state in
            var field = ChunkBitfield(count: state.chunks.count)
            for (index, chunk) in state.chunks.enumerated() where chunk != .missing { field.insert(index) }
            return field
        }
    }

    /// The chunks in the file and checked: a peer asking for one of these waits on nothing.
    func inHand() -> ChunkBitfield {
        state.withLock { state in
            var field = ChunkBitfield(count: state.chunks.count)
            for (index, chunk) in state.chunks.enumerated() where chunk == .held { field.insert(index) }
            return field
        }
    }

    /// The state of chunk `index`.
    func chunkState(_ index: Int) -> ChunkState { state.withLock { $0.chunks[index] } }

    /// Waits until chunk `index` is held; throws the download's failure, or `CancellationError`.
    func wait(for index: Int) async throws {
        while true {
            let now = progress(index)
            if now.state == .held { return }
            try await waitChange(index, from: now.version)
        }
    }

    /// Waits until the whole blob verified; throws the download's failure.
    func waitVerified() async throws {
        try await waitFor(key: count) { $0.verified }
    }

    /// The chunk that starts at `offset` and is `length` bytes long, if there is one.
    func chunk(at offset: UInt64, length: UInt64) -> Int? {
        var low = 0
        var high = offsets.count
        while low < high {
            let middle = (low + high) / 2
            if offsets[middle] < offset { low = middle + 1 } else { high = middle }
        }
        guard low < offsets.count, offsets[low] == offset, UInt64(map.chunks[low].length) == length else { return nil }
        return low
    }

    private func waitFor(key: Int, done: (State) -> Bool) async throws {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { state in
                    if let failure = state.failure { return .failure(failure) }
                    if done(state) { return .success(()) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[key, default: [:]][id] = continuation
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiters[key]?.removeValue(forKey: id) }
            continuation?.resume(throwing: CancellationError())
        }
    }

    private func resume(_ continuations: [CheckedContinuation<Void, any Error>], with error: PeerError?) {
        for continuation in continuations {
            if let error { continuation.resume(throwing: error) } else { continuation.resume() }
        }
    }
}

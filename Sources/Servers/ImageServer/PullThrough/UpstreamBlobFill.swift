import SpeedyCore

/// A blob on its way from an upstream into the cluster, which every pull of it reads chunk by
/// chunk as the chunks land: the upstream sends it once, however many clients wait for it, and
/// none of them holds more than the chunk it is sending.
///
/// A chunk is given out once it is durable on its group, except the last: that one only once the
/// whole blob has the digest asked for and is recorded. A client that took the earlier chunks of
/// a blob that fails its digest is cut short of its `Content-Length`, never given a clean end.
actor UpstreamBlobFill {
    /// The blob's digest.
    let digest: Digest
    /// The repository it is filled into (and linked in, once recorded).
    let repository: String
    /// Its length, when the upstream said it (`Content-Length`).
    let size: UInt64?
    /// The length of every chunk but the last.
    let chunkSize: Int
    /// The blob as it was stored before this fill could begin (nothing came from the upstream):
    /// served as any stored blob, whatever its chunks.
    let stored: BlobRecord?
    private var landed: [Int: ChunkRef] = [:]
    private var outcome: Result<BlobRecord, any Error>?
    private var waiters: [CheckedContinuation<Void, Never>] = []

    /// A fill of `digest` into `repository`, `size` bytes long when known, cut into `chunkSize` chunks.
    init(digest: Digest, repository: String, size: UInt64?, chunkSize: Int) {
        self.digest = digest
        self.repository = repository
        self.size = size
        self.chunkSize = chunkSize
        self.stored = nil
    }

    /// A fill that is over before it began: the blob was stored already, as `record`.
    init(recorded record: BlobRecord, repository: String, chunkSize: Int) {
        self.digest = record.digest
        self.repository = repository
        self.size = record.size
        self.chunkSize = chunkSize
        self.stored = record
        self.outcome = .success(record)
    }

    /// Its key among the fills in flight.
    nonisolated var key: PullThroughCache.FillKey { PullThroughCache.FillKey(repository: repository, digest: digest) }

    /// How many chunks the blob has, when its size is known.
    nonisolated var chunkCount: Int? {
        size.map { Int(($0 + UInt64(chunkSize) - 1) / UInt64(chunkSize)) }
    }

    /// Notes that the chunk at `index` of the body is durable.
    func land(_ ref: ChunkRef, at index: Int) {
        landed[index] = ref
        wake()
    }

    /// Notes how the fill ended: the blob as recorded, or why it is not. A record whose chunks
    /// are not the ones that landed here (another push of the same digest was recorded first)
    /// ends the fill's readers with an error: what they sent so far was cut at this fill's chunk
    /// boundaries, and a retry reads the recorded blob.
    func finish(_ result: Result<BlobRecord, any Error>) {
        if case .success(let record) = result, record.chunks != (0..<landed.count).compactMap({ landed[$0] }) {
            outcome = .failure(UpstreamFillError.recordedElsewhere(record.digest))
        } else {
            outcome = result
        }
        wake()
    }

    /// The blob as recorded, once the fill has ended.
    /// - Throws: why the fill failed; `CancellationError` when the caller is cancelled first.
    func record() async throws -> BlobRecord {
        while true {
            if let outcome { return try outcome.get() }
            try await change()
        }
    }

    /// The chunk at `index`, once it may be read.
    /// - Throws: why the fill failed, when it failed before the chunk could be given out.
    func chunk(_ index: Int) async throws -> ChunkRef {
        while true {
            switch outcome {
            case .success(let record)?:
                guard index < record.chunks.count else { throw UpstreamFillError.pastTheEnd(index) }
                return record.chunks[index]
            case .failure(let error)?:
                throw error
            case nil:
                if let count = chunkCount, index < count - 1, let ref = landed[index] { return ref }
            }
            try await change()
        }
    }

    /// Waits for the next chunk or the end. A cancelled waiter wakes with the next change: the
    /// upstream's read limit bounds how long that is.
    private func change() async throws {
        try Task.checkCancellation()
        await withCheckedContinuation { waiters.append($0) }
        try Task.checkCancellation()
    }

    private func wake() {
        let woken = waiters
        waiters = []
        for waiter in woken { waiter.resume() }
    }
}

/// Why a read of a fill found no chunk.
enum UpstreamFillError: Error, CustomStringConvertible {
    /// The blob has fewer chunks than the reader expected (the upstream said another length).
    case pastTheEnd(Int)
    /// Another push of the same digest was recorded while this fill ran: read that one.
    case recordedElsewhere(Digest)
    /// The upstream sent the body too slowly (``UpstreamBody``).
    case tooSlow(received: Int, seconds: Int)

    var description: String {
        switch self {
        case .pastTheEnd(let index): "the blob has no chunk \(index)"
        case .recordedElsewhere(let digest): "\(digest) was stored by another push while it came from the upstream; pull it again"
        case .tooSlow(let received, let seconds): "the upstream sent \(received) bytes in \(seconds) s, too slowly to cache"
        }
    }
}

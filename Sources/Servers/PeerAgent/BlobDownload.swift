import AsyncHTTPClient
import CoreMetrics
import HTTPTypes
import NIOHTTP1
import Logging
import NIOCore
import SpeedyClients
import SpeedyCore
import Synchronization

/// What every download of the agent shares: where chunks come from and where blobs go.
struct DownloadContext: Sendable {
    let fetcher: ChunkFetcher
    let upstream: RegistryUpstream
    let cache: BlobCache
    /// Asks who else holds a blob's chunks; nil when the agent runs without a swarm.
    let tracker: TrackerClient?
    let announcer: SwarmAnnouncer?
    let index: SwarmIndex?
    /// How often a download asks the tracker for its blob's holders again.
    let lookupInterval: Duration
    let metrics: PeerMetrics
    let logger: Logger
}

/// One blob downloading into a ``PartialBlob``, BitTorrent-style: `window` fetches at once,
/// each taking the chunk the fewest peers hold (ties in an order random per download), from a
/// peer that holds it, else from the chunkservers, else from the registry. Agents agree, by the
/// order the tracker saw them join the blob's swarm, which one reads a chunk from the
/// chunkservers and whom each of the others reads it from (``origins(of:in:)``). A peer that
/// sends a bad chunk is dropped for the blob. The blob is hashed in order as chunks arrive and enters
/// the cache only once it hashes to its digest.
///
/// It runs in a task of its own (``SwarmDownloads``), not in a client's request: the clients of
/// this host and its peers follow it, and it finishes for the cache even when the client that
/// started it goes away.
final class BlobDownload: Sendable {
    /// The holders of the blob's chunks as the tracker last said, less those dropped.
    private struct PeerView: Sendable {
        var peers: [SwarmPeers.Peer] = []
        var dropped: Set<String> = []
        /// When this agent joined the blob's swarm, as the tracker numbers it.
        var joined: UInt64?

        func holders(of index: Int) -> [SwarmPeers.Peer] {
            peers.filter { $0.have.contains(index) && !dropped.contains($0.agent) }
        }
    }

    let partial: PartialBlob
    private let name: String
    private let credentials: HTTPFields
    private let context: DownloadContext
    private let window: Int
    /// The order ties are broken in: shuffled in a swarm, the blob's order alone.
    private let order: [Int]
    private let view = Mutex(PeerView())
    private let onEnd: @Sendable () -> Void

    /// A download of `partial` for repository `name`; `credentials` (the first client's) are
    /// used only for the registry's blob GET, the last resort. `onEnd` runs once it ends.
    init(partial: PartialBlob, name: String, credentials: HTTPFields, context: DownloadContext, window: Int, onEnd: @escaping @Sendable () -> Void) {
        self.partial = partial
        self.name = name
        self.credentials = credentials
        self.context = context
        self.window = max(1, window)
        order = context.tracker == nil ? Array(0..<partial.count) : Array(0..<partial.count).shuffled()
        self.onEnd = onEnd
    }

    /// Fetches every chunk, verifies and caches the blob; failures end in ``PartialBlob/fail(_:)``.
    func run() async {
        async let verified: Void = verifyAndCache()
        await fetchChunks()
        await verified
        onEnd()
        context.announcer?.changed(partial.digest)
    }

    /// Keeps ``window`` fetches going: claims the rarest missing chunks as slots free up, and in
    /// a swarm tells the tracker about the claims at once and asks again who holds what, so that
    /// of the agents that claimed one chunk together only one reads it from the chunkservers
    /// (``origins(of:in:)``) and the others read it from that one.
    private func fetchChunks() async {
        var lastLookup: ContinuousClock.Instant?
        await withTaskGroup(of: Bool.self) { group in
            var inFlight = 0
            while true {
                if context.tracker != nil, partial.hasMissing, lastLookup.map({ .now - $0 >= context.lookupInterval }) ?? true {
                    await lookUpHolders()
                    lastLookup = .now
                }
                let before = view.withLock { $0 }
                var batch: [Int] = []
                while inFlight + batch.count < window, let index = partial.claim({ self.rarest(among: $0, in: before) }) { batch.append(index) }
                if !batch.isEmpty, context.tracker != nil {
                    await context.announcer?.announceNow(partial.digest)
                    // Asked after the announce, so the answer has every agent that joined first.
                    await lookUpHolders()
                    lastLookup = .now
                }
                let after = view.withLock { $0 }
                for index in batch {
                    let peers = origins(of: index, in: after)
                    context.logger.debug("chunk \(index) of \(partial.digest) claimed; origins \(peers.map(\.agent))")
                    group.addTask { await self.fetchAndStore(index, peers: peers) }
                    inFlight += 1
                }
                guard inFlight > 0 else { return }
                let fetched = await group.next() ?? false
                inFlight -= 1
                if !fetched { return }
            }
        }
    }

    /// Fetches chunk `index` into the file (from `peers` first, then the chunkservers, then the
    /// registry); false when the download failed.
    private func fetchAndStore(_ index: Int, peers: [SwarmPeers.Peer]) async -> Bool {
        let entry = partial.map.chunks[index]
        let live = view.withLock { view in peers.filter { !view.dropped.contains($0.agent) } }
        do throws(PeerError) {
            var got = try await fromPeers(index, live.prefix(3))
            if !got { got = try await fromChunkservers(index) }
            if got {
                partial.markHeld(index)
                context.announcer?.changed(partial.digest)
                return true
            }
            if let data = await fromRegistry(entry, offset: partial.offsets[index]) {
                try await partial.file.write(data, at: partial.offsets[index])
                partial.markHeld(index)
                context.announcer?.changed(partial.digest)
                return true
            }
            partial.fail(.blobUnavailable("chunk \(index) of \(partial.digest): no peer, chunkserver or the registry served a good copy"))
        } catch {
            // A full disk: the followers get the rest in order, uncached.
            context.metrics.cacheWriteFailures.increment()
            partial.fail(error)
        }
        return false
    }

    /// Chunk `index` from the first of `peers` that sends a good copy; a peer that sends a bad
    /// one is dropped for the blob.
    private func fromPeers(_ index: Int, _ peers: ArraySlice<SwarmPeers.Peer>) async throws(PeerError) -> Bool {
        guard let signer = context.fetcher.signer else { return false }
        let entry = partial.map.chunks[index]
        for peer in peers {
            let target = PeerServeRoutes.target(digest: partial.digest, offset: partial.offsets[index], length: UInt64(entry.length))
            let headers = [("Authorization", signer.authorization(.GET, target))]
            let started = ContinuousClock.now
            switch try await receive(index, from: peer.address + target, headers: headers, getter: context.fetcher.peerGetter) {
            case .good:
                context.metrics.peerBytes.increment(by: Int64(entry.length))
                context.logger.debug("chunk \(index) of \(partial.digest) from peer \(peer.agent) in \(ContinuousClock.now - started)")
                return true
            case .bad:
                view.withLock { _ = $0.dropped.insert(peer.agent) }
                context.metrics.badPeerChunks.increment()
                context.logger.warning("peer \(peer.agent) at \(peer.address) sent chunk \(index) of \(partial.digest) with a wrong length or CRC: dropped for this blob, reported to the tracker")
                report(peer.agent, index)
            case .unavailable(let why):
                context.logger.debug("chunk \(index) of \(partial.digest) from peer \(peer.address): \(why)")
            }
        }
        return false
    }

    /// Tells the tracker, in the background, that `agent` sent a bad chunk `index`: two agents
    /// reporting one peer keep it out of every lookup for a while (``SwarmReport``).
    private func report(_ agent: String, _ index: Int) {
        guard let tracker = context.tracker else { return }
        let (digest, logger) = (partial.digest, context.logger)
        Task {
            do throws(ServiceError) {
                try await tracker.report(agent, digest: digest, index: index)
            } catch {
                logger.info("reporting peer \(agent) to the tracker: \(error)")
            }
        }
    }

    /// Chunk `index` from the first member of its group that sends a good copy.
    private func fromChunkservers(_ index: Int) async throws(PeerError) -> Bool {
        let entry = partial.map.chunks[index]
        let headers = ChunkFetcher.headers(entry)
        for member in entry.members {
            let url = ChunkFetcher.url(entry, at: member, context.fetcher.transport)
            let started = ContinuousClock.now
            switch try await receive(index, from: url, headers: headers, getter: context.fetcher.getter) {
            case .good:
                context.metrics.chunkserverBytes.increment(by: Int64(entry.length))
                context.logger.debug("chunk \(index) of \(partial.digest) from chunkserver \(member) in \(ContinuousClock.now - started)")
                return true
            case .bad:
                context.metrics.crcFailures.increment()
                context.logger.warning("chunk \(entry.key) from \(member): not the map's length \(entry.length) and CRC \(CRCFormat.hex(entry.crc)); trying the next member")
                context.fetcher.askToVerify(entry, at: member)
            case .unavailable(let why):
                context.logger.info("chunk \(entry.key) from \(member): \(why); trying the next member")
            }
        }
        return false
    }

    /// How one attempt at a chunk ended.
    private enum Received {
        case good
        /// The bytes failed the map's length or CRC.
        case bad
        case unavailable(String)
    }

    /// One attempt at chunk `index` from `url`. Its bytes go into the file as they arrive, so
    /// peers waiting for the chunk read them at once (each checks the CRC itself); an attempt
    /// that fails is thrown away (``PartialBlob/reset(_:)``), cutting off whoever read its bytes.
    /// Throws only when the disk fails.
    private func receive(_ index: Int, from url: String, headers: [(String, String)], getter: ChunkGetter) async throws(PeerError) -> Received {
        let entry = partial.map.chunks[index]
        let base = partial.offsets[index]
        let partial = self.partial
        let attempt = Attempt()
        // Written in blocks, not in the pieces the connection hands over: fewer system calls,
        // and fewer wake-ups of the peers streaming the chunk.
        let store: @Sendable (Attempt.Block) async throws -> Void = { block in
            try await partial.file.write(block.bytes, at: base + UInt64(block.offset))
            partial.advance(index, to: block.offset + block.bytes.readableBytes)
        }
        do {
            try await getter.stream(url, headers: headers, length: Int(entry.length)) { piece in
                if let block = attempt.take(piece) { try await store(block) }
            }
            if let block = attempt.rest() { try await store(block) }
        } catch let error as ChunkGetter.Failure {
            partial.reset(index)
            switch error {
            case .sink(let failure): throw failure
            case .tooLong: return .bad
            default: return .unavailable("\(error)")
            }
        } catch {
            partial.reset(index)
            throw error as? PeerError ?? .cache("\(error)")
        }
        guard attempt.matches(entry) else {
            partial.reset(index)
            return .bad
        }
        return .good
    }

    /// The bytes an attempt received so far, their CRC, and those not written yet.
    private final class Attempt: Sendable {
        /// Bytes gathered before they are written. Each agent of a chain holds back up to this
        /// much before the next sees it, so it is kept small: at a stream's 1–2 MB/s on the lab,
        /// 256 KiB cost a chain of eight over a second per chunk.
        static let blockBytes = 64 << 10

        /// Bytes to write at `offset` in the chunk.
        struct Block: Sendable {
            var offset: Int
            var bytes: ByteBuffer
        }

        private struct State {
            var count = 0
            var crc = CRC32C()
            var pending: ByteBuffer?
            var pendingOffset = 0
        }

        private let state = Mutex(State())

        /// Counts `piece` in; returns a block to write once enough has gathered.
        func take(_ piece: ByteBuffer) -> Block? {
            state.withLock { state in
                state.count += piece.readableBytes
                state.crc.update(piece)
                if state.pending == nil {
                    state.pending = ByteBufferAllocator().buffer(capacity: Self.blockBytes)
                    state.pendingOffset = state.count - piece.readableBytes
                }
                state.pending!.writeImmutableBuffer(piece)
                guard state.pending!.readableBytes >= Self.blockBytes else { return nil }
                defer { state.pending = nil }
                return Block(offset: state.pendingOffset, bytes: state.pending!)
            }
        }

        /// The block still gathered at the end, if any.
        func rest() -> Block? {
            state.withLock { state in
                defer { state.pending = nil }
                return state.pending.map { Block(offset: state.pendingOffset, bytes: $0) }
            }
        }

        /// Whether the bytes are the chunk the map describes.
        func matches(_ entry: ChunkMap.Entry) -> Bool {
            state.withLock { $0.count == Int(entry.length) && $0.crc.value == entry.crc }
        }
    }

    /// The missing chunk the fewest live peers hold in `view`, the first in ``order`` among equals.
    private func rarest(among states: [PartialBlob.ChunkState], in view: PeerView) -> Int? {
        let peers = view.peers.filter { !view.dropped.contains($0.agent) }
        var best: (index: Int, holders: Int)?
        for index in order where states[index] == .missing {
            let holders = peers.reduce(0) { $0 + ($1.have.contains(index) ? 1 : 0) }
            if best == nil || holders < best!.holders { best = (index, holders) }
            if holders == 0 { break }
        }
        return best?.index
    }

    /// The peers to ask for chunk `index`, which this agent just claimed, in `view` (looked up
    /// after the claim was announced): first the agents that joined the blob's swarm before this
    /// one and hold or claimed the chunk, the latest to join first, then agents that joined later
    /// and have the chunk in hand. None, so the chunkservers, when no one holds it yet.
    ///
    /// Reading from the latest earlier joiner makes a chain per chunk in the order the tracker
    /// numbered the joins: each agent sends each chunk on to one other at most, so the swarm's
    /// uploads spread evenly over its agents whoever came first (the lab's binary tree, and
    /// before it "anyone with it in hand", left a fast starter sending to most of the fleet while
    /// others sat idle). Chunks pass cut-through, so a chain is barely slower to its end than a
    /// tree. An agent waits only on agents that joined before it, or on none (chunks in hand),
    /// so no two agents ever wait on each other.
    private func origins(of index: Int, in view: PeerView) -> [SwarmPeers.Peer] {
        let holders = view.holders(of: index)
        let inHand = holders.filter { $0.held?.contains(index) == true }
        guard let mine = view.joined else { return inHand.shuffled() }
        let earlier = holders.filter { ($0.joined ?? .max) < mine }.sorted { $0.joined! > $1.joined! }
        return earlier + inHand.filter { ($0.joined ?? .max) > mine }.shuffled()
    }

    /// Chunk `entry` through the registry's blob GET with a `Range`, checked like any other.
    private func fromRegistry(_ entry: ChunkMap.Entry, offset: UInt64) async -> ByteBuffer? {
        let last = offset + UInt64(entry.length) - 1
        do {
            let response = try await context.upstream.send(
                .get, "/v2/\(name)/blobs/\(partial.digest)", clientHeaders: RegistryUpstream.credentials(credentials),
                extra: [("Range", "bytes=\(offset)-\(last)"), ("Accept-Encoding", "identity")])
            guard response.status.code == 206,
                response.headers.first(name: "Content-Range") == "bytes \(offset)-\(last)/\(partial.map.size)"
            else {
                _ = try? await response.body.collect(upTo: 64 << 10)
                context.logger.warning("chunk at \(offset) of \(partial.digest): the registry answered \(response.status.code) to a range request")
                return nil
            }
            let data = try await response.body.collect(upTo: Int(entry.length))
            context.metrics.imageserverBytes.increment(by: Int64(data.readableBytes))
            return ChunkFetcher.matches(data, entry) ? data : nil
        } catch {
            context.logger.warning("chunk at \(offset) of \(partial.digest) from the registry: \(error)")
            return nil
        }
    }

    /// Asks the tracker who holds the blob's chunks (agents whose bitfield has another length
    /// hold another layout of the blob, and are left out).
    private func lookUpHolders() async {
        guard let tracker = context.tracker else { return }
        do {
            let answer = try await tracker.peers(of: partial.digest)
            let usable = answer.peers.filter { $0.have.count == partial.count }
            view.withLock { ($0.peers, $0.joined) = (usable, answer.callerJoined) }
        } catch {
            context.logger.debug("tracker lookup of \(partial.digest): \(error)")
        }
    }

    /// Hashes the chunks in blob order as they arrive; when the blob hashes to its digest, makes
    /// the file durable and moves it into the cache.
    private func verifyAndCache() async {
        var hasher = SHA256Hasher()
        do {
            for index in 0..<partial.count {
                try await partial.wait(for: index)
                hasher.update(try await partial.file.read(at: partial.offsets[index], count: Int(partial.map.chunks[index].length)))
            }
        } catch {
            partial.file.discard(from: context.cache)
            return
        }
        let got = hasher.finalize()
        guard got == partial.digest else {
            context.logger.error("blob \(partial.digest) assembled from chunks that each passed their CRC hashes to \(got): not cached")
            partial.fail(.digestMismatch(expected: partial.digest.description, got: got.description))
            partial.file.discard(from: context.cache)
            return
        }
        do {
            try await partial.file.commit(to: context.cache, digest: partial.digest, size: partial.map.size)
            context.index?.record(partial.digest, chunks: partial.count)
        } catch {
            // The bytes are right; only the cache missed them.
            context.metrics.cacheWriteFailures.increment()
        }
        partial.markVerified()
    }
}

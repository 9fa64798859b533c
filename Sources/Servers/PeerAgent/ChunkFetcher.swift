import CoreMetrics
import Logging
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore

/// Reads chunks in blob order straight from the chunkservers, with the registry's tickets (the
/// path when a blob cannot be downloaded into the cache), and holds what ``BlobDownload`` needs
/// to reach chunkservers and other agents (peers). Every chunk is checked against the CRC-32C
/// and length of the registry's chunk map before it is handed on; a source that sends a bad
/// copy is skipped.
struct ChunkFetcher: Sendable {
    /// No cluster secret: a ticket is the only credential a chunk request carries.
    let transport: ClusterTransport
    let getter: ChunkGetter
    /// The getter for peers: it waits longer for a response's head, since a peer answers a chunk
    /// it claimed only once the chunk arrived (``SwarmConfiguration/chunkWait``).
    let peerGetter: ChunkGetter
    /// Signs requests to peers; nil when the agent runs without a swarm.
    let signer: PeerRequestSigner?
    /// Chunks fetched ahead of the one being handed on (in order), or at once (in a swarm).
    let window: Int
    let metrics: PeerMetrics
    let logger: Logger

    /// Hands each chunk of `chunks` to `deliver` in order while the next `window - 1` are
    /// fetched from the chunkservers; returns the index of the first chunk no member served (the
    /// caller gets the rest elsewhere), or nil when every chunk came. Nothing after a failed
    /// chunk is handed on. The path when no temporary file can be written.
    func fetchInOrder(_ chunks: ArraySlice<ChunkMap.Entry>, deliver: (ByteBuffer) async throws -> Void) async throws -> Int? {
        let chunks = Array(chunks)
        return try await withThrowingTaskGroup(of: (Int, ByteBuffer?).self) { group in
            var next = 0
            func start() {
                guard next < chunks.count else { return }
                let index = next
                let entry = chunks[index]
                group.addTask { (index, await self.fromChunkservers(entry)) }
                next += 1
            }
            for _ in 0..<max(1, window) { start() }
            var ready: [Int: ByteBuffer?] = [:]
            var sending = 0
            while sending < chunks.count {
                if let arrived = ready.removeValue(forKey: sending) {
                    guard let data = arrived else {
                        group.cancelAll()
                        return sending
                    }
                    try await deliver(data)
                    sending += 1
                    start()
                    continue
                }
                guard let (index, data) = try await group.next() else { break }
                ready[index] = data
            }
            return nil
        }
    }

    /// One chunk from the first member that serves a good copy; nil when none does.
    func fromChunkservers(_ entry: ChunkMap.Entry) async -> ByteBuffer? {
        let key = entry.key
        for member in entry.members {
            if Task.isCancelled { return nil }
            do {
                let data = try await getter.get(Self.url(entry, at: member, transport), headers: Self.headers(entry), length: Int(entry.length))
                guard Self.matches(data, entry) else {
                    metrics.crcFailures.increment()
                    logger.warning("chunk \(key) from \(member): \(data.readableBytes) bytes not matching the map's length \(entry.length) and CRC \(CRCFormat.hex(entry.crc)); trying the next member")
                    askToVerify(entry, at: member)
                    continue
                }
                metrics.chunkserverBytes.increment(by: Int64(data.readableBytes))
                return data
            } catch {
                logger.info("chunk \(key) from \(member): \(error); trying the next member")
            }
        }
        return nil
    }

    /// Where chunk `entry` is read from `member`.
    static func url(_ entry: ChunkMap.Entry, at member: String, _ transport: ClusterTransport) -> String {
        transport.url(member) + "/v1/chunks/\(entry.key.group)/\(entry.key.fileId)"
    }

    /// The ticket, and the ``SpeedyHeader/read`` mode: `unchecked` lets the member send its copy
    /// from its volume file (every chunk is checked here), `verify` has it check its copy.
    static func headers(_ entry: ChunkMap.Entry, read mode: String? = SpeedyHeader.readUnchecked) -> [(String, String)] {
        (entry.ticket.isEmpty ? [] : [("Authorization", ChunkMap.authorization(ticket: entry.ticket))])
            + (mode.map { [(SpeedyHeader.read, $0)] } ?? [])
    }

    /// Has `member` check its copy of `entry` in the background after it sent one that failed
    /// the map's CRC: the member reads its copy checked and reports a damaged one itself.
    func askToVerify(_ entry: ChunkMap.Entry, at member: String) {
        let (getter, logger, url) = (getter, logger, Self.url(entry, at: member, transport))
        ChunkVerifyRequests.shared.start(entry.key, at: member) {
            do {
                _ = try await getter.get(url, headers: Self.headers(entry, read: SpeedyHeader.readVerify), length: Int(entry.length))
                logger.warning("chunk \(entry.key) from \(member): its own check passed (damaged on the way here)")
            } catch {
                logger.warning("chunk \(entry.key) from \(member): its own check: \(error)")
            }
        }
    }

    /// Whether `data` is the chunk the map describes: its length and CRC-32C.
    static func matches(_ data: ByteBuffer, _ entry: ChunkMap.Entry) -> Bool {
        data.readableBytes == Int(entry.length) && CRC32C.checksum(data) == entry.crc
    }
}

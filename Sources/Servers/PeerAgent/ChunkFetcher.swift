import CoreMetrics
import Logging
import NIOCore
import SpeedyClients
import SpeedyCore

/// Reads a blob's chunks straight from the chunkservers with the registry's tickets: a few at
/// a time, handed on in blob order; each checked against the CRC-32C and length of the chunk
/// map, another member tried when one fails or sends a bad copy.
struct ChunkFetcher: Sendable {
    /// No cluster secret: a ticket is the only credential a chunk request carries.
    let transport: ClusterTransport
    let timeout: Duration
    /// Chunks fetched ahead of the one being handed on.
    let window: Int
    let metrics: PeerMetrics
    let logger: Logger

    /// Hands each chunk of `chunks` to `deliver` in order while the next `window - 1` are
    /// fetched; returns the index of the first chunk no member served (the caller gets the rest
    /// elsewhere), or nil when every chunk came. Nothing after a failed chunk is handed on.
    func fetchInOrder(_ chunks: [ChunkMap.Entry], deliver: (ByteBuffer) async throws -> Void) async throws -> Int? {
        try await withThrowingTaskGroup(of: (Int, ByteBuffer?).self) { group in
            var next = 0
            func start() {
                guard next < chunks.count else { return }
                let index = next
                let entry = chunks[index]
                group.addTask { (index, await self.fetch(entry)) }
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
    func fetch(_ entry: ChunkMap.Entry) async -> ByteBuffer? {
        let key = ChunkKey(group: entry.group, fileId: entry.fileId)
        for member in entry.members {
            if Task.isCancelled { return nil }
            let client = ChunkServerClient(
                baseURL: member, timeout: .milliseconds(timeout.milliseconds), transport: transport, http: transport.peerHTTP)
            do {
                let data = try await client.getChecked(key, ticket: entry.ticket, limit: Int(entry.length)).data
                guard data.readableBytes == Int(entry.length), CRC32C.checksum(data) == entry.crc else {
                    metrics.crcFailures.increment()
                    logger.warning("chunk \(key) from \(member): \(data.readableBytes) bytes, not the \(entry.length) with CRC \(CRCFormat.hex(entry.crc)) of the map; trying the next member")
                    continue
                }
                metrics.chunkserverBytes.increment(by: Int64(data.readableBytes))
                return data
            } catch {
                if case .badResponse(_, let reason) = error, reason.contains("CRC") { metrics.crcFailures.increment() }
                logger.info("chunk \(key) from \(member): \(error); trying the next member")
            }
        }
        return nil
    }
}

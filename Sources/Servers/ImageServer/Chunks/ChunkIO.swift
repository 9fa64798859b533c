import HTTPTypes
import AsyncHTTPClient
import CoreMetrics
import Logging
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore

/// Why a chunk could not be written or read.
enum ChunkIOError: Error, CustomStringConvertible {
    /// No healthy group is left to write to.
    case noWritableGroup(tried: [UInt32], lastError: String?)
    /// Every member of the group failed to return a good copy.
    case unreadable(ChunkRef, errors: [String])
    /// The master could not lease file ids.
    case noFileIds(String)

    var description: String {
        switch self {
        case .noWritableGroup(let tried, let last):
            "no writable group" + (tried.isEmpty ? "" : " (tried groups \(tried.map(String.init).joined(separator: ", ")): \(last ?? "failed"))")
        case .unreadable(let ref, let errors):
            "chunk \(ref.key) could not be read from any replica: \(errors.joined(separator: "; "))"
        case .noFileIds(let reason): "cannot lease file ids from the master: \(reason)"
        }
    }
}

/// Writes a chunk to every member of a group and reads it back from any one, checking CRCs.
struct ChunkIO: Sendable {
    let view: ClusterView
    let ids: FileIdPool
    /// The secret and CA the chunkservers are called with.
    let cluster: ClusterTransport
    let http: HTTPClient
    /// The client chunk reads go through: one that gives up on a member silent for a few
    /// seconds (a cut link hangs rather than resets), so the read moves on to another member.
    let readHTTP: HTTPClient
    /// Where whole-chunk reads from plain-HTTP members go: below the async layers, each byte
    /// checksummed as it arrives (``ChunkReadClient``), silent members given up on as by `readHTTP`.
    let reader: ChunkReadClient
    let attempts: Int
    let logger: Logger
    var metrics: ChunkIOMetrics { .shared }

    /// Writes `data` to every member of one writable group that takes writes (`RW`, and a
    /// `TRANSFERRING` replacement, so it misses nothing written while it is filled). The chunk is
    /// sent once, to the head of the group's chain, which passes it on (``ReplicationChain``); it
    /// counts only when the head reports every member durable with the right CRC. A failing group
    /// is left for another one, up to `attempts` groups.
    ///
    /// `crc` is the CRC-32C of `data` when the caller computed it on the way (else it is computed here).
    func write(_ data: ByteBuffer, crc known: UInt32? = nil) async throws(ChunkIOError) -> ChunkRef {
        let crc = known ?? CRC32C.checksum(data)
        let started = ContinuousClock.now
        var tried: [UInt32] = []
        var lastError: String?
        for attempt in 0..<attempts {
            guard let group = await view.pickGroup(excluding: Set(tried)) else { break }
            // Counted only when another group was there to retry on.
            if attempt > 0 { metrics.writeRetries.increment() }
            tried.append(group.id)
            let fileId = try await leaseFileId()
            let key = ChunkKey(group: group.id, fileId: fileId)
            // Leasing ids may have taken a while (the master changing hands, say): write to the
            // members the map names now, waiting for a new map when this one has grown too old.
            guard let current = await view.writableGroupWaiting(group.id) else {
                lastError = "group \(group.id) is no longer writable, or the cluster map is older than \(ClusterView.maxMapAgeForWrites)"
                continue
            }
            let chain = ReplicationChain.rotated(current.members.filter(\.status.takesWrites).map(\.addr), by: fileId)
            if let failure = await writeChain(key, data, crc: crc, chain: chain) {
                lastError = failure
                logger.warning("chunk \(key) not written to every member (\(failure)); trying another group")
                // The copies that did land are garbage now.
                removeGarbage([(key, crc)], alsoFrom: chain.members)
                continue
            }
            metrics.writes.increment()
            metrics.writeBytes.increment(by: data.readableBytes)
            metrics.writeSeconds.recordElapsed(since: started)
            return ChunkRef(group: group.id, fileId: fileId, length: UInt32(data.readableBytes), crc: crc)
        }
        metrics.writeFailures.increment()
        throw .noWritableGroup(tried: tried, lastError: lastError)
    }

    /// The next file id. While no master leads (one died, a standby is taking over), asks again
    /// every quarter second for up to ``ClusterView/mapWait``, as a write waits for a map.
    private func leaseFileId() async throws(ChunkIOError) -> UInt64 {
        let deadline = ContinuousClock.now + ClusterView.mapWait
        while true {
            do {
                return try await ids.next()
            } catch {
                guard MasterClient.shouldTryAnother(error), ContinuousClock.now < deadline, !Task.isCancelled else {
                    throw .noFileIds("\(error)")
                }
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Sends the chunk to the chain's head; nil when every member holds it, else why not.
    private func writeChain(_ key: ChunkKey, _ data: ByteBuffer, crc: UInt32, chain: ReplicationChain) async -> String? {
        guard let head = chain.members.first else { return "group \(key.group) has no member taking writes" }
        do {
            let (info, replicas) = try await ChunkServerClient(baseURL: head, transport: cluster, http: http)
                .put(key, data: data, crc: crc, onTo: Array(chain.members.dropFirst()))
            guard info.crc == crc, Int(info.length) == data.readableBytes else { return "\(head) stored a different CRC" }
            guard replicas == chain.members.count else { return "\(head) reported \(replicas) of \(chain.members.count) copies" }
            return nil
        } catch {
            return "\(head): \(error)"
        }
    }

    /// Reads a whole chunk from the least busy member whose copy passes the CRC, trying the others
    /// when one fails.
    func read(_ ref: ChunkRef) async throws(ChunkIOError) -> ByteBuffer {
        var errors: [String] = []
        let started = ContinuousClock.now
        for addr in await view.readers(of: ref.group) {
            if !errors.isEmpty { metrics.readFailovers.increment() }
            do {
                // The client checked the bytes against the server's CRC; that CRC must be the blob's.
                // Unchecked by the member, which sends it from its volume file: it is checked here.
                let (data, crc) = try await view.reading(from: addr) {
                    try await ChunkServerClient(baseURL: addr, transport: cluster, http: readHTTP).getUnchecked(ref.key, through: reader, limit: Int(ref.length))
                }
                guard data.readableBytes == Int(ref.length), crc == ref.crc else {
                    metrics.crcMismatches.increment()
                    errors.append("\(addr): content does not match the blob's record")
                    continue
                }
                metrics.reads.increment()
                metrics.readBytes.increment(by: data.readableBytes)
                metrics.readSeconds.recordElapsed(since: started)
                return data
            } catch {
                if case .badResponse(_, let reason) = error as? ServiceError, reason == ChunkServerClient.crcMismatch {
                    metrics.crcMismatches.increment()
                    askToVerify(ref.key, at: addr)
                }
                errors.append("\(addr): \(error)")
            }
        }
        metrics.readFailures.increment()
        if errors.isEmpty { errors.append("the cluster map names no member of group \(ref.group)") }
        logger.error("chunk \(ref.key) unreadable: \(errors.joined(separator: "; "))")
        throw .unreadable(ref, errors: errors)
    }

    /// Has `addr` check its copy of `key` in the background, after it sent bytes that failed
    /// their CRC: a damaged copy is then reported by the member itself, which the master repairs.
    /// (The member's own check, not this process's word: no caller can get a good copy flagged.)
    private func askToVerify(_ key: ChunkKey, at addr: String) {
        let (cluster, http, logger) = (cluster, readHTTP, logger)
        ChunkVerifyRequests.shared.start(key, at: addr) {
            do {
                let good = try await ChunkServerClient(baseURL: addr, transport: cluster, http: http).verify(key)
                logger.warning("chunk \(key) from \(addr) failed its CRC on the way here; the member's own check: \(good ? "its copy is good (damaged in transit)" : "its copy is damaged, reported for repair")")
            } catch {
                logger.warning("chunk \(key) from \(addr) failed its CRC; asking the member to check its copy: \(error)")
            }
        }
    }

    /// Deletes chunks from every member of their groups, ignoring failures (garbage cleanup).
    func discard(_ refs: [ChunkRef]) {
        removeGarbage(refs.map { ($0.key, $0.crc) }, alsoFrom: [])
    }

    /// Deletes `chunks` in the background from the members of their groups and from `addrs`, and
    /// once more a little later: a transfer may have copied a chunk to its new member meanwhile.
    /// Each delete names the CRC of the bytes written, so a member holding other bytes under the
    /// key (file ids handed out twice by a master restored from an old database) keeps them.
    private func removeGarbage(_ chunks: [(key: ChunkKey, crc: UInt32)], alsoFrom addrs: [String]) {
        guard !chunks.isEmpty else { return }
        let view = self.view
        let http = self.http
        let cluster = self.cluster
        Task.detached {
            for pass in 0..<2 {
                if pass > 0 { try? await Task.sleep(for: .seconds(5)) }
                let groups = await view.current()?.groups ?? []
                for (key, crc) in chunks {
                    let members = groups.first { $0.id == key.group }?.members.map(\.addr) ?? []
                    for addr in Set(addrs + members) { try? await ChunkServerClient(baseURL: addr, transport: cluster, http: http).delete(key, ifCRC: crc) }
                }
            }
        }
    }
}

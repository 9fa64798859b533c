import NIOCore
import SpeedyCore

/// Why one chunk could not be moved. None leaves a blob without its bytes: the blobs that were
/// not switched still name the original.
public enum ChunkMoveError: Error, Sendable, CustomStringConvertible {
    /// No member of the source group returned a copy with the recorded length and CRC.
    case unreadable(ChunkKey, [String])
    /// The destination chain did not take the copy on every member (the copies that landed were
    /// deleted).
    case notWritten(ChunkKey, String)
    /// No file id could be leased for the copy.
    case noFileId(String)
    /// The copy was written longer ago than the switch deadline before its first switch: it was
    /// deleted (garbage collection may take an old unreferenced chunk, docs/gc.md).
    case tooSlow(ChunkKey)
    /// The metaserver failed a switch; the copy stays (the switch may have been applied) and is
    /// collected as an orphan if it was not.
    case metadata(ChunkKey, MetadataError)

    public var description: String {
        switch self {
        case .unreadable(let key, let errors): "chunk \(key): no member returned it intact: \(errors.joined(separator: "; "))"
        case .notWritten(let key, let why): "chunk \(key): the copy was not written: \(why)"
        case .noFileId(let why): "no file id for the copy: \(why)"
        case .tooSlow(let key): "chunk \(key): the copy took longer than the switch deadline; it was deleted and is tried again later"
        case .metadata(let key, let error): "chunk \(key): the metaserver did not switch it: \(error)"
        }
    }
}

/// Moves one chunk to another group while the cluster serves (a drain, a rebalance;
/// docs/recovery.md): reads a copy that passes its CRC from a member of its group, writes it along
/// the destination group's chain under a new file id (every member acknowledges the CRC), then
/// switches each blob that names it to the copy, one conditional transaction per blob
/// (``MetadataStore/moveChunk(of:from:to:)``). A pull never meets a missing chunk: a blob names the
/// copy only once every member holds it, and the original stays, recorded as moved, until garbage
/// collection's grace has passed.
///
/// The copy is unreferenced from its write to its first switch; the orphan sweep takes only
/// chunks held longer than the chunk grace, so a copy is switched within ``switchDeadline`` of the
/// start of its write or never (deleted), the imageservers' hold-deadline rule (docs/gc.md).
public struct ChunkMover: Sendable {
    /// The metadata the blobs are switched in.
    public let meta: any MetadataStore
    /// Where the copies' file ids come from.
    public let ids: FileIdPool
    /// How the chunkservers are called.
    public let transport: ClusterTransport
    /// The longest a copy may go unreferenced: the imageservers' default hold deadline, well
    /// under the default chunk grace (10 minutes).
    public var switchDeadline: Duration = .seconds(60)

    /// What a move came to.
    public enum Outcome: Sendable, Equatable {
        /// The copy is `to`; `blobs` blobs name it now (those whose switch said so).
        case moved(to: ChunkRef, blobs: Int)
        /// No blob named the chunk any more (swept, repaired, or moved by another run meanwhile):
        /// the copy was deleted.
        case unused
    }

    /// Creates a mover.
    public init(meta: any MetadataStore, ids: FileIdPool, transport: ClusterTransport) {
        self.meta = meta
        self.ids = ids
        self.transport = transport
    }

    /// Moves `chunk`, which the blobs `owners` name, to `destination`; `readers` are the
    /// addresses of its group's members, the ones to try first first.
    public func move(_ chunk: ChunkRef, owners: [Digest], readers: [String], to destination: GroupSnapshot) async throws(ChunkMoveError) -> Outcome {
        let data = try await read(chunk, from: readers)
        let fileId: UInt64
        do {
            fileId = try await ids.next()
        } catch {
            throw .noFileId("\(error)")
        }
        let copy = ChunkRef(group: destination.id, fileId: fileId, length: chunk.length, crc: chunk.crc)
        let chain = ReplicationChain.rotated(destination.members.filter(\.status.takesWrites).map(\.addr), by: fileId)
        let started = ContinuousClock.now
        if let failure = await write(copy, data, chain: chain) {
            await delete(copy, from: chain.members)
            throw .notWritten(chunk.key, failure)
        }
        var switched = 0
        for owner in owners {
            // Past the deadline the orphan sweep may take the copy before the switch lands.
            guard ContinuousClock.now - started < switchDeadline else { break }
            do {
                if try await meta.moveChunk(of: owner, from: chunk, to: copy) { switched += 1 }
            } catch {
                throw .metadata(chunk.key, error)
            }
        }
        if switched > 0 { return .moved(to: copy, blobs: switched) }
        // Every answer said nothing changed: no blob names the copy.
        await delete(copy, from: chain.members)
        if ContinuousClock.now - started >= switchDeadline, !owners.isEmpty { throw .tooSlow(chunk.key) }
        return .unused
    }

    /// The chunk's bytes from the first member whose copy has the recorded length and CRC (the
    /// client checks the bytes against the CRC the server sends).
    private func read(_ chunk: ChunkRef, from readers: [String]) async throws(ChunkMoveError) -> ByteBuffer {
        var errors: [String] = []
        for addr in readers {
            do {
                let (data, crc) = try await ChunkServerClient(baseURL: addr, transport: transport).getChecked(chunk.key)
                guard crc == chunk.crc, data.readableBytes == Int(chunk.length) else {
                    errors.append("\(addr): holds other bytes under the key")
                    continue
                }
                return data
            } catch {
                errors.append("\(addr): \(error)")
            }
        }
        throw .unreadable(chunk.key, errors.isEmpty ? ["no member to read from"] : errors)
    }

    /// Sends the copy to the chain's head; nil when every member holds it with its CRC, else why not.
    private func write(_ copy: ChunkRef, _ data: ByteBuffer, chain: ReplicationChain) async -> String? {
        guard let head = chain.members.first else { return "group \(copy.group) has no member taking writes" }
        do {
            let (info, replicas) = try await ChunkServerClient(baseURL: head, transport: transport)
                .put(copy.key, data: data, crc: copy.crc, onTo: Array(chain.members.dropFirst()))
            guard info.crc == copy.crc, info.length == copy.length else { return "\(head) stored a different CRC" }
            guard replicas == chain.members.count else { return "\(head) reported \(replicas) of \(chain.members.count) copies" }
            return nil
        } catch {
            return "\(head): \(error)"
        }
    }

    /// Deletes a copy no blob names from `members`, by its CRC (other bytes under the key stay);
    /// a member that does not answer keeps it as an orphan for garbage collection.
    private func delete(_ copy: ChunkRef, from members: [String]) async {
        for addr in members { try? await ChunkServerClient(baseURL: addr, transport: transport).delete(copy.key, ifCRC: copy.crc) }
    }
}

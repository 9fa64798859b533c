import CommandLineSupport
import NIOCore
import ToolSupport
import SpeedyClients
import SpeedyCore

/// `fsck --deep`'s last step: every blob's SHA-256, recomputed from its chunks, against its
/// digest. A record whose chunks are each intact (good CRCs) can still describe other bytes;
/// only the digest tells.
struct BlobDigestCheck {
    let store: MetaClient
    let snapshot: ClusterSnapshot

    /// A blob whose bytes do not have its digest, or cannot be read.
    struct Mismatch: Codable {
        var digest: String
        var why: String
    }

    /// Hashes every blob; `progress` is called after each with blobs done and bytes read.
    func run(progress: (Int, UInt64) async throws -> Void) async throws -> (hashed: Int, mismatches: [Mismatch]) {
        var after: String?
        var hashed = 0
        var bytes: UInt64 = 0
        var mismatches: [Mismatch] = []
        repeat {
            let page: BlobPage
            do {
                page = try await store.blobs(after: after, limit: 500)
            } catch {
                throw couldNotRun("cannot list blobs from the metaserver: \(error)")
            }
            for blob in page.blobs {
                let (why, read) = await check(blob)
                bytes += read
                hashed += 1
                if let why { mismatches.append(Mismatch(digest: blob.digest.description, why: why)) }
                try await progress(hashed, bytes)
            }
            after = page.nextAfter
        } while after != nil
        return (hashed, mismatches)
    }

    /// Why `blob` is bad (nil when its bytes have its digest), and how many bytes were read.
    func check(_ blob: BlobRecord) async -> (String?, UInt64) {
        guard blob.digest.algorithm == .sha256 else { return (nil, 0) }
        var hasher = SHA256Hasher()
        var size: UInt64 = 0
        for ref in blob.chunks {
            guard let data = await read(ref) else { return ("chunk \(ref.group)/\(ref.fileId) has no copy that passes its CRC", size) }
            hasher.update(data)
            size += UInt64(data.readableBytes)
        }
        guard size == blob.size else { return ("its chunks hold \(size) bytes, the record says \(blob.size)", size) }
        let actual = hasher.finalize()
        return (actual == blob.digest ? nil : "its chunks hash to \(actual)", size)
    }

    /// The chunk from the first readable member whose copy passes the recorded CRC.
    private func read(_ ref: ChunkRef) async -> ByteBuffer? {
        let members = snapshot.groups.first { $0.id == ref.group }?.members.filter(\.status.isReadable) ?? []
        for member in members {
            guard let (data, crc) = try? await ChunkServerClient(baseURL: member.addr, transport: store.transport).getChecked(ChunkKey(group: ref.group, fileId: ref.fileId))
            else { continue }
            if crc == ref.crc, data.readableBytes == Int(ref.length) { return data }
        }
        return nil
    }
}

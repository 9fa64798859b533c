import Logging
import NIOCore
import SpeedyCore

extension RegistryAPI {
    /// Whether the blob `record` describes really has `digest`: its chunks are read (each
    /// checked against its CRC, from any replica) and hashed. A chunk no replica can give back
    /// counts as a mismatch: the caller holds a verified copy and replacing is always safe.
    /// - Returns: nil when the check could not be made now (no memory for it): keep the record.
    func storedBlobHolds(_ record: BlobRecord, digest: Digest, client: String) async -> Bool? {
        var hasher = SHA256Hasher()
        var size: UInt64 = 0
        for ref in record.chunks {
            let reservation: BudgetReservation
            do {
                reservation = try await budget.reserve(Int(ref.length), client: client)
            } catch {
                return nil
            }
            defer { reservation.release() }
            do {
                let data = try await io.read(ref)
                hasher.update(data)
                size += UInt64(data.readableBytes)
            } catch {
                logger.warning("cannot read back chunk \(ref.key) of the stored \(digest): \(error)")
                return false
            }
        }
        return size == record.size && hasher.finalize() == digest
    }

    /// After a verified push of `digest` as `chunks`, the metaserver returned `stored`: the
    /// record kept under that digest. When it is another record, keep it only if its bytes
    /// really have the digest; a record that lies is replaced by ours. Then drops whichever
    /// chunks are not referenced.
    func settle(_ stored: BlobRecord, ours: BlobRecord, repository: String, client: String) async throws {
        guard stored.chunks != ours.chunks else { return }
        if await storedBlobHolds(stored, digest: ours.digest, client: client) ?? true {
            io.discard(ours.chunks.filter { !Set(stored.chunks).contains($0) })
            return
        }
        logger.warning("the metaserver's record of \(ours.digest) does not hold its bytes; replacing it with the one just pushed and verified")
        let now = try await meta.repairBlob(ours, replacing: stored.chunks, repository: repository)
        // Another push repaired it first: ours are duplicates.
        if now.chunks != ours.chunks { io.discard(ours.chunks.filter { !Set(now.chunks).contains($0) }) }
    }
}

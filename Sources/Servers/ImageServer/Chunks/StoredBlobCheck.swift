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
}

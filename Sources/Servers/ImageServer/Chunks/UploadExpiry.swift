import Logging
import ServerSupport
import SpeedyCore

/// Ends upload sessions nobody has touched for `expiry` and deletes their chunks, so abandoned
/// uploads neither fill the metaserver's table nor the chunkservers. Every imageserver runs one;
/// the metaserver hands each expired session to exactly one of them.
struct UploadExpiry: Sendable {
    let meta: any MetadataStore
    let io: ChunkIO
    let expiry: Duration
    let logger: Logger

    /// Sessions ended per metaserver call, and calls per sweep (the next sweep goes on).
    static let batch = 500
    static let batchesPerSweep = 20

    /// How often to sweep: a tenth of the expiry, between 1 s and a minute.
    var interval: Duration { min(max(expiry / 10, .seconds(1)), .seconds(60)) }

    func sweep() async {
        let cutoff = currentTimeMillis() - Int64(expiry.components.seconds) * 1000 - Int64(expiry.components.attoseconds / 1_000_000_000_000_000)
        var ended = 0
        for _ in 0..<Self.batchesPerSweep {
            let expired: [UploadSession]
            do {
                expired = try await meta.expireUploads(idleSinceMs: cutoff, limit: Self.batch)
            } catch {
                logger.warning("cannot expire idle upload sessions: \(error)")
                return
            }
            BlobWriter.discardExpired(expired, io: io)
            ended += expired.count
            if expired.count < Self.batch { break }
        }
        if ended > 0 { logger.notice("ended \(ended) upload session(s) idle for more than \(expiry) and deleted their chunks") }
    }

    /// The background loop.
    var task: PeriodicTask { PeriodicTask(name: "upload-expiry", interval: interval) { await sweep() } }
}

import CoreMetrics
import HTTPTypes
import Hummingbird
import ServerSupport
import SpeedyClients
import SpeedyCore

extension RegistryAPI {
    /// `GET /v2/<name>/_speedy/chunks/<digest>`: the blob's ``ChunkMap``, for `speedy peer` to read
    /// its chunks straight from the chunkservers. Authorized as a pull of `<name>` (the auth
    /// middleware), and answered only for a blob linked to `<name>` (`BLOB_UNKNOWN` otherwise, as
    /// the blob's GET): whoever may pull the blob may read its chunks anyway.
    func chunkMap(name: String, digest text: String) async throws -> Response {
        let digest = try digest(text)
        guard let blob = try await meta.blob(digest, in: name) else { throw OCIError.blobUnknown(digest.description) }
        let expiresMs = currentTimeMillis() + configuration.ticketLifetime.milliseconds
        // Under `--insecure` there is no key, and the chunkservers ask for no ticket.
        let key = configuration.cluster.secret.map { ChunkTicketKey(secret: $0) }
        var members: [UInt32: [String]] = [:]
        var entries: [ChunkMap.Entry] = []
        entries.reserveCapacity(blob.chunks.count)
        for chunk in blob.chunks {
            if members[chunk.group] == nil {
                members[chunk.group] = await io.view.servingMembers(of: chunk.group).map { configuration.cluster.url($0) }
            }
            entries.append(
                ChunkMap.Entry(
                    group: chunk.group, fileId: chunk.fileId, length: chunk.length, crc: chunk.crc, members: members[chunk.group] ?? [],
                    ticket: key?.ticket(for: chunk.key, expiresMs: expiresMs) ?? ""))
        }
        ChunkIOMetrics.shared.chunkMaps.increment()
        if key != nil { ChunkIOMetrics.shared.chunkTickets.increment(by: entries.count) }
        var response = try JSONResponse.make(ChunkMap(digest: digest.description, size: blob.size, expiresMs: expiresMs, chunks: entries))
        // Tickets are credentials: no cache keeps them.
        response.headers[.cacheControl] = "no-store"
        response.headers[Self.contentDigest] = digest.description
        return response
    }
}

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
        let key = configuration.cluster.secret.map { configuration.roles == nil ? ChunkTicketKey(secret: $0) : ChunkTicketKey.signer(for: $0) }
        var members: [UInt32: (addresses: [String], readable: Int)] = [:]
        var entries: [ChunkMap.Entry] = []
        entries.reserveCapacity(blob.chunks.count)
        // Agents read each chunk from its first member: the readable members take turns, from a
        // place that differs per request, so a fleet pulling one image reads from every member.
        let start = Int.random(in: 0..<64)
        for (index, chunk) in blob.chunks.enumerated() {
            if members[chunk.group] == nil {
                let serving = await io.view.servingMembers(of: chunk.group)
                members[chunk.group] = (serving.addresses.map { configuration.cluster.url($0) }, serving.readable)
            }
            let serving = members[chunk.group] ?? ([], 0)
            entries.append(
                ChunkMap.Entry(
                    group: chunk.group, fileId: chunk.fileId, length: chunk.length, crc: chunk.crc,
                    members: Self.turn(serving.addresses, readable: serving.readable, by: start + index),
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

    /// `addresses` with its first `readable` rotated by `turn` (the rest, the last resort, stay last).
    static func turn(_ addresses: [String], readable: Int, by turn: Int) -> [String] {
        guard readable > 1 else { return addresses }
        let shift = turn % readable
        return Array(addresses[shift..<readable] + addresses[0..<shift] + addresses[readable...])
    }
}

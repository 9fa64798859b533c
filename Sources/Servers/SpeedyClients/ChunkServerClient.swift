import AsyncHTTPClient
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyCore

/// Calls one chunkserver's HTTP API (documented in docs/api.md).
public struct ChunkServerClient: Sendable {
    /// The underlying JSON client.
    public let service: ServiceClient

    /// Creates a client for the chunkserver at `baseURL` (`http://host:port` or `host:port`).
    /// `http` replaces the transport's client (a chain member passes chunks on through its `peerHTTP`).
    public init(baseURL: String, timeout: TimeAmount = .seconds(30), transport: ClusterTransport, http: HTTPClient? = nil) {
        self.service = ServiceClient(baseURL: baseURL, timeout: timeout, transport: transport, http: http, audience: .chunkserver)
    }

    /// Stores a chunk; returns once every byte is durable on the chunkserver's disk.
    /// - Parameter crc: the data's CRC-32C when the caller has it already (it is sent for the
    ///   server to check), else it is computed here.
    public func put(_ key: ChunkKey, data: ByteBuffer, crc known: UInt32? = nil) async throws(ServiceError) -> ChunkInfo {
        try await put(key, data: data, crc: known ?? CRC32C.checksum(data), onTo: []).info
    }

    /// Stores a chunk on this chunkserver and, through it, on every member of `tail` in turn
    /// (see ``ReplicationChain``); returns the head's record and how many members reported the
    /// chunk durable with `crc`.
    public func put(_ key: ChunkKey, data: ByteBuffer, crc: UInt32, onTo tail: [String]) async throws(ServiceError) -> (info: ChunkInfo, replicas: Int) {
        let path = Self.path(key)
        let reply = try await service.send(.PUT, path, body: data, headers: putHeaders(crc: crc, tail: tail))
        return try Self.decodePut(reply, url: service.baseURL + path)
    }

    /// Like ``put(_:data:crc:onTo:)`` with the body streamed from `body` as it arrives (how a
    /// chain member passes a chunk on before it has all of it). A `body` that ends short of
    /// `length` fails the request, and the receiver drops what it got.
    public func put<Body: AsyncSequence & Sendable>(
        _ key: ChunkKey, streaming body: Body, length: Int, crc: UInt32, onTo tail: [String]
    ) async throws(ServiceError) -> (info: ChunkInfo, replicas: Int) where Body.Element == ByteBuffer {
        let path = Self.path(key)
        let reply = try await service.send(.PUT, path, streaming: body, length: length, headers: putHeaders(crc: crc, tail: tail))
        return try Self.decodePut(reply, url: service.baseURL + path)
    }

    private static func path(_ key: ChunkKey) -> String { "/v1/chunks/\(key.group)/\(key.fileId)" }

    private func putHeaders(crc: UInt32, tail: [String]) -> [(String, String)] {
        var headers = [(SpeedyHeader.crc32c, CRCFormat.hex(crc))]
        if !tail.isEmpty {
            headers.append((SpeedyHeader.chain, tail.joined(separator: ",")))
            headers.append((SpeedyHeader.timeoutMs, String(service.timeout.nanoseconds / 1_000_000)))
        }
        return headers
    }

    private static func decodePut(_ reply: (status: Int, headers: HTTPHeaders, body: ByteBuffer), url: String) throws(ServiceError) -> (info: ChunkInfo, replicas: Int) {
        try ServiceClient.check(reply.status, reply.body, url: url)
        let info: ChunkInfo
        do {
            info = try WireJSON.decoder().decode(ChunkInfo.self, from: reply.body)
        } catch {
            throw .badResponse(url: url, reason: "\(error)")
        }
        // A chunkserver that predates chains stores only its own copy and sends no count.
        let replicas = reply.headers.first(name: SpeedyHeader.replicas).map { Int($0) ?? 0 } ?? 1
        return (info, replicas)
    }

    /// Reads a whole chunk and checks its CRC against the one the server sent.
    public func get(_ key: ChunkKey) async throws(ServiceError) -> ByteBuffer {
        try await getChecked(key).data
    }

    /// Reads a whole chunk; the returned CRC is the server's, and the data has been checked against it.
    ///
    /// - Parameter serverChecks: false lets the server send the stored bytes unchecked, straight
    ///   from its volume file (``SpeedyHeader/read``); they are still checked here. A caller
    ///   that gets a CRC mismatch that way tells the server with ``verify(_:)``.
    public func getChecked(_ key: ChunkKey, serverChecks: Bool = true) async throws(ServiceError) -> (data: ByteBuffer, crc: UInt32) {
        try await Self.getChecked(key, from: service, headers: serverChecks ? [] : [(SpeedyHeader.read, SpeedyHeader.readUnchecked)])
    }

    /// Like ``getChecked(_:serverChecks:)`` with `serverChecks: false`, read through `reader`
    /// (the bytes checksummed as they arrive, no async hop per piece) when the member speaks
    /// plain HTTP; a TLS member is read through the HTTP client as before.
    /// `limit` bounds the bytes taken (the chunk's length, when the caller knows it).
    public func getUnchecked(
        _ key: ChunkKey, through reader: ChunkReadClient, limit: Int = 64 << 20
    ) async throws(ServiceError) -> (data: ByteBuffer, crc: UInt32) {
        guard service.baseURL.hasPrefix("http://") else { return try await getChecked(key, serverChecks: false) }
        let path = Self.path(key)
        let url = service.baseURL + path
        let reply = try await reader.get(
            path, from: service.baseURL, headers: service.identityHeaders + [(SpeedyHeader.read, SpeedyHeader.readUnchecked)],
            limit: limit, timeout: service.timeout)
        try ServiceClient.check(reply.status, reply.body, url: url)
        guard let header = reply.headers.first(name: SpeedyHeader.crc32c), let crc = CRCFormat.parse(header) else {
            throw .badResponse(url: url, reason: "missing \(SpeedyHeader.crc32c)")
        }
        guard reply.crc == crc else { throw .badResponse(url: url, reason: Self.crcMismatch) }
        return (reply.body, crc)
    }

    /// The reason of the ``ServiceError/badResponse(url:reason:)`` a read throws when the bytes
    /// do not match the CRC the server sent: the copy or the wire is damaged.
    public static let crcMismatch = "CRC mismatch in transit"

    /// Has the server read and check its copy of `key` (``SpeedyHeader/readVerify``: no bytes
    /// come back): a copy that fails its CRC is reported damaged by the server, and repaired.
    /// Returns whether the server's copy is good; throws when it cannot tell.
    @discardableResult
    public func verify(_ key: ChunkKey) async throws(ServiceError) -> Bool {
        let path = Self.path(key)
        let reply = try await service.send(.GET, path, headers: [(SpeedyHeader.read, SpeedyHeader.readVerify)])
        // CHUNK_CORRUPT and IO_ERROR: the copy cannot be read good.
        if reply.status == InternalErrorCode.chunkCorrupt.status { return false }
        try ServiceClient.check(reply.status, reply.body, url: service.baseURL + path)
        return true
    }

    /// Reads a whole chunk with a ticket from the imageserver's ``ChunkMap`` instead of the
    /// cluster secret (how `speedy peer` reads), and checks its CRC against the one the server sent.
    public func get(_ key: ChunkKey, ticket: String) async throws(ServiceError) -> ByteBuffer {
        try await getChecked(key, ticket: ticket).data
    }

    /// Like ``getChecked(_:)``, authorized by `ticket` (``ChunkMap/Entry/ticket``) alone: the
    /// transport's secret, if it has one, is not sent. An empty ticket (a cluster run with
    /// `--insecure`) sends no `Authorization` at all.
    /// `limit` bounds the bytes taken (a chunk's length, from the map: a member cannot make the
    /// caller buffer more).
    public func getChecked(_ key: ChunkKey, ticket: String, limit: Int = 64 << 20) async throws(ServiceError) -> (data: ByteBuffer, crc: UInt32) {
        let anonymous = ServiceClient(baseURL: service.baseURL, timeout: service.timeout, transport: service.transport.anonymous, http: service.http)
        let headers = ticket.isEmpty ? [] : [("Authorization", ChunkMap.authorization(ticket: ticket))]
        return try await Self.getChecked(key, from: anonymous, headers: headers, limit: limit)
    }

    private static func getChecked(
        _ key: ChunkKey, from service: ServiceClient, headers: [(String, String)], limit: Int = 64 << 20
    ) async throws(ServiceError) -> (data: ByteBuffer, crc: UInt32) {
        let path = Self.path(key)
        let reply = try await service.send(.GET, path, headers: headers, limit: limit)
        try ServiceClient.check(reply.status, reply.body, url: service.baseURL + path)
        guard let header = reply.headers.first(name: SpeedyHeader.crc32c), let crc = CRCFormat.parse(header) else {
            throw .badResponse(url: service.baseURL + path, reason: "missing \(SpeedyHeader.crc32c)")
        }
        guard CRC32C.checksum(reply.body) == crc else {
            throw .badResponse(url: service.baseURL + path, reason: Self.crcMismatch)
        }
        return (reply.body, crc)
    }

    /// Deletes a chunk; with `ifCRC`, only if the stored chunk has that CRC (else `412`).
    public func delete(_ key: ChunkKey, ifCRC crc: UInt32? = nil) async throws(ServiceError) {
        let path = "/v1/chunks/\(key.group)/\(key.fileId)" + (crc.map { "?crc=\(CRCFormat.hex($0))" } ?? "")
        let reply = try await service.send(.DELETE, path)
        try ServiceClient.check(reply.status, reply.body, url: service.baseURL + path)
    }

    /// One page of the chunks stored for `group`, with file ids greater than `after`; with `ages`,
    /// how long ago the server stored each (``ChunkListing/agesMs``).
    public func list(group: UInt32, after: UInt64 = 0, limit: Int = 1000, ages: Bool = false) async throws(ServiceError) -> ChunkListing {
        try await service.json(.GET, "/v1/chunks/\(group)?after=\(after)&limit=\(limit)" + (ages ? "&ages=true" : ""), as: ChunkListing.self)
    }

    /// The count and hash of the chunks stored for `group` in each of `parts` (1 to 256)
    /// near-equal ranges cutting [`from`, `to`), in order: what replicas compare instead of their
    /// listings (``ReplicaComparison``).
    public func digests(group: UInt32, from: UInt64 = 0, to: UInt64 = .max, parts: Int = 16) async throws(ServiceError) -> ChunkRangeDigests {
        try await service.json(.GET, "/v1/chunks/\(group)/digests?from=\(from)&to=\(to)&parts=\(parts)", as: ChunkRangeDigests.self)
    }

    /// Every chunk stored for `group`, by file id (all pages).
    public func listAll(group: UInt32) async throws(ServiceError) -> [UInt64: ChunkInfo] {
        var chunks: [UInt64: ChunkInfo] = [:]
        var after: UInt64 = 0
        while true {
            let page = try await list(group: group, after: after, limit: 5000)
            for info in page.chunks { chunks[info.fileId] = info }
            guard let next = page.nextAfter else { return chunks }
            after = next
        }
    }

    /// Every chunk stored for `group` with how long ago this server stored it, in milliseconds.
    public func listAllWithAges(group: UInt32) async throws(ServiceError) -> [(info: ChunkInfo, ageMs: Int64)] {
        var chunks: [(info: ChunkInfo, ageMs: Int64)] = []
        var after: UInt64 = 0
        while true {
            let page = try await service.json(.GET, "/v1/chunks/\(group)?after=\(after)&limit=5000&ages=true", as: ChunkListing.self)
            // A server too old to tell ages makes every chunk look new: nothing is collected.
            let ages = page.agesMs ?? []
            for (i, info) in page.chunks.enumerated() { chunks.append((info, i < ages.count ? ages[i] : 0)) }
            guard let next = page.nextAfter else { return chunks }
            after = next
        }
    }

    /// Compacts the server's sealed volumes under `threshold` (its own when nil) now; answers when done.
    public func compact(threshold: Double? = nil) async throws(ServiceError) -> VolumesReport {
        try await service.json(.POST, "/v1/compact" + (threshold.map { "?threshold=\($0)" } ?? ""), as: VolumesReport.self)
    }

    /// The server's volumes: size, live bytes, reclaimable bytes.
    public func volumes() async throws(ServiceError) -> VolumesReport {
        try await service.json(.GET, "/v1/volumes", as: VolumesReport.self)
    }

    /// The server's own heartbeat figures (`GET /v1/stats`): its id, group, status and counters.
    public func stats() async throws(ServiceError) -> HeartbeatReport {
        try await service.json(.GET, "/v1/stats", as: HeartbeatReport.self)
    }
}

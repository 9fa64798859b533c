import ChunkStorage
import HTTPTypes
import Hummingbird
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The chunkserver's HTTP API (docs/api.md): put, get (with Range), head and delete of a chunk,
/// a paged listing per group, and stats.
struct ChunkRoutes: Sendable {
    let store: any ChunkStore
    /// The group served: fixed, or a spare's once the master gives it one.
    let membership: GroupMembership
    let counters: TrafficCounters
    let stats: @Sendable () -> HeartbeatReport
    let maxChunkBytes: Int
    /// How a chunk is passed on to the chain's next member (the secret, the CA, the peer pool).
    var peers = ClusterTransport.plain
    /// Told of each chunk a read found damaged (bad CRC or a disk error), for the scrubber to
    /// report and list until it is repaired.
    var onDamage: @Sendable (UInt64, String) async -> Void = { _, _ in }
    /// Where whole-chunk reads marked `X-Speedy-Read: unchecked` are sent from the volume file by
    /// the kernel; nil (a TLS port, or a router driven in process) reads them into memory.
    var fileRegions: FileRegionResponses?
    /// The group's members as the master lists them, which a chain may name only; nil (a router
    /// driven in process, without a master) checks no chain.
    var chainMembers: ChainMembers?

    static let crcHeader = HTTPField.Name(SpeedyHeader.crc32c)!
    static let chainHeader = HTTPField.Name(SpeedyHeader.chain)!
    static let replicasHeader = HTTPField.Name(SpeedyHeader.replicas)!
    static let timeoutHeader = HTTPField.Name(SpeedyHeader.timeoutMs)!
    static let readHeader = HTTPField.Name(SpeedyHeader.read)!

    func register(on router: Router<SpeedyRequestContext>) {
        router.put("/v1/chunks/{group}/{fileId}") { request, context in try await put(request, context) }
        // A constant segment wins over {fileId}, so `digests` is never read as a file id.
        router.get("/v1/chunks/{group}/digests") { request, context in try digests(request, context) }
        router.get("/v1/chunks/{group}/{fileId}") { request, context in try await get(request, context, head: false) }
        router.head("/v1/chunks/{group}/{fileId}") { request, context in try await get(request, context, head: true) }
        router.delete("/v1/chunks/{group}/{fileId}") { request, context in try await delete(request, context) }
        router.get("/v1/chunks/{group}") { request, context in try list(request, context) }
        router.get("/v1/stats") { _, _ in try JSONResponse.make(stats()) }
        router.get("/v1/health") { _, _ in "ok\n" }
    }

    private func key(_ context: SpeedyRequestContext) throws -> ChunkKey {
        let group = try servedGroup(context)
        let idText = context.parameters.get("fileId") ?? ""
        guard let fileId = UInt64(idText) else { throw APIError.badRequest("file id must be a whole number, got '\(idText)'") }
        return ChunkKey(group: group, fileId: fileId)
    }

    /// Stores a chunk and, when the request names a chain, streams it on to the next member as it
    /// arrives; answers 201 only when this copy and every copy after it are durable with the
    /// right CRC. When the rest of the chain fails, this copy is dropped too (502 CHAIN_FAILED).
    private func put(_ request: Request, _ context: SpeedyRequestContext) async throws -> Response {
        let key = try key(context)
        let declared = try declaredLength(request)
        let expectedCRC = try declaredCRC(request)
        let forward = try await chainForward(request, key: key, length: declared, crc: expectedCRC)
        // A retry finds its chunk stored already; a failed chain must not delete that copy.
        let storedBefore = store.info(key) != nil
        let info: ChunkInfo
        do {
            let (body, bodyCRC) = try await receive(request.body, declared: declared, forwardingTo: forward)
            info = try await store(key, body, crc: expectedCRC, dataCRC: bodyCRC)
        } catch {
            forward?.abandon()
            throw error
        }
        var replicas = 1
        if let forward {
            do {
                try await forward.finish(crc: info.crc, length: Int(info.length))
            } catch {
                if !storedBefore { try? await store.delete(key) }
                throw APIError(.chainFailed, "chunk \(key) did not reach every member after this one: \(error)")
            }
            replicas += forward.tail.count
        }
        var response = try JSONResponse.make(info, status: .created)
        response.headers[Self.crcHeader] = CRCFormat.hex(info.crc)
        response.headers[Self.replicasHeader] = String(replicas)
        return response
    }

    private func declaredLength(_ request: Request) throws -> Int? {
        let declared = request.headers[.contentLength].flatMap { Int($0) }
        if let declared, declared > maxChunkBytes {
            throw APIError(.chunkTooLarge, "chunk of \(declared) bytes is over the \(maxChunkBytes)-byte limit")
        }
        return declared
    }

    private func declaredCRC(_ request: Request) throws -> UInt32? {
        guard let text = request.headers[Self.crcHeader] else { return nil }
        guard let crc = CRCFormat.parse(text) else {
            throw APIError.badRequest("\(SpeedyHeader.crc32c) must be 1 to 8 hex digits, got '\(text)'")
        }
        return crc
    }

    /// The forward to the next member when the request names a chain, all of whose members are
    /// in this server's group (403 `FORBIDDEN` otherwise: the chunk, and this server's
    /// credential, go to the group's members only).
    private func chainForward(_ request: Request, key: ChunkKey, length: Int?, crc: UInt32?) async throws -> ChainForward? {
        guard let text = request.headers[Self.chainHeader] else { return nil }
        guard let tail = ReplicationChain.parseTail(text) else {
            throw APIError.badRequest("\(SpeedyHeader.chain) must be up to \(ReplicationChain.maxMembers) distinct HOST:PORTs separated by commas")
        }
        guard !tail.isEmpty else { return nil }
        if let chainMembers {
            let strangers = await chainMembers.strangers(in: tail)
            guard strangers.isEmpty else {
                throw APIError(
                    .forbidden, "\(SpeedyHeader.chain) names \(strangers.joined(separator: ", ")), not a member of group \(key.group) as the master lists it")
            }
        }
        guard let length, let crc else {
            throw APIError.badRequest("a chained PUT needs Content-Length and \(SpeedyHeader.crc32c), for the members after this one to check")
        }
        let callerTimeout = request.headers[Self.timeoutHeader].flatMap { Int64($0) }.flatMap { $0 > 0 ? $0 : nil }
        return ChainForward(
            key, length: length, crc: crc, tail: tail, timeout: ChainForward.timeout(callerTimeoutMs: callerTimeout), peers: peers)
    }

    /// Reads the whole body into one buffer of the declared size, handing each piece on as it
    /// comes; returns it with its CRC-32C, computed piece by piece while each was in the cache.
    private func receive(
        _ pieces: RequestBody, declared: Int?, forwardingTo forward: ChainForward?
    ) async throws -> (body: ByteBuffer, crc: UInt32) {
        // Reserve the declared length once, rather than growing (and copying) as bytes arrive.
        var body = ChunkBufferPool.allocator.buffer(capacity: declared ?? 0)
        var crc = CRC32C()
        do {
            for try await piece in pieces {
                guard body.readableBytes + piece.readableBytes <= maxChunkBytes else {
                    throw APIError(.chunkTooLarge, "chunk is over the \(maxChunkBytes)-byte limit")
                }
                forward?.send(piece)
                crc.update(piece)
                body.writeImmutableBuffer(piece)
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest("request body ended early: \(error)")
        }
        if let declared, declared != body.readableBytes {
            throw APIError.badRequest("body has \(body.readableBytes) bytes but Content-Length said \(declared)")
        }
        return (body, crc.value)
    }

    private func store(_ key: ChunkKey, _ body: ByteBuffer, crc: UInt32?, dataCRC: UInt32) async throws -> ChunkInfo {
        let info: ChunkInfo
        do {
            info = try await store.put(key, data: body, crc: crc, dataCRC: dataCRC)
        } catch {
            throw Self.apiError(error)
        }
        counters.recordWrite(bytes: body.readableBytes)
        return info
    }

    private func get(_ request: Request, _ context: SpeedyRequestContext, head: Bool) async throws -> Response {
        let key = try key(context)
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.acceptRanges] = "bytes"
        if head {
            guard let info = store.info(key) else { throw Self.apiError(.notFound(key)) }
            headers[.contentLength] = String(info.length)
            headers[Self.crcHeader] = CRCFormat.hex(info.crc)
            return Response(status: .ok, headers: headers, body: .init())
        }
        let mode = request.headers[Self.readHeader]
        if mode == SpeedyHeader.readUnchecked, request.headers[.range] == nil, let regions = fileRegions, let extent = await store.extent(key) {
            return unchecked(key, extent, headers: headers, regions: regions)
        }
        let data: ByteBuffer
        do {
            data = try await store.get(key)
        } catch {
            switch error {
            case .corrupt, .io: await onDamage(key.fileId, "found by a read: \(error)")
            default: break
            }
            throw Self.apiError(error)
        }
        // The CRC header always describes the whole chunk, so a client can check a full read. The
        // store checked the data against the indexed CRC, so that one is sent.
        headers[Self.crcHeader] = CRCFormat.hex(store.info(key)?.crc ?? CRC32C.checksum(data))
        if mode == SpeedyHeader.readVerify {
            // The copy passed its CRC: the answer says so, without its bytes.
            headers[.contentLength] = "0"
            return Response(status: .ok, headers: headers, body: .init())
        }
        counters.recordRead(bytes: data.readableBytes)
        switch ByteRangeRequest.resolve(request.headers[.range], length: UInt64(data.readableBytes)) {
        case .whole:
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: data))
        case .partial(let range):
            headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(data.readableBytes)"
            // Inside the chunk, so both ends fit an Int.
            let slice = data.getSlice(at: data.readerIndex + Int(range.lowerBound), length: Int(range.upperBound - range.lowerBound) + 1)!
            return Response(status: .partialContent, headers: headers, body: .init(byteBuffer: slice))
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(data.readableBytes)"
            return Response(status: .rangeNotSatisfiable, headers: headers, body: .init())
        }
    }

    /// A chunk sent from its volume file by `sendfile`, unchecked: the reader checks the CRC, and
    /// on a mismatch asks for a ``SpeedyHeader/readVerify`` read, which checks this copy and
    /// reports it. A disk error while sending is reported here, as a checked read's would be.
    private func unchecked(_ key: ChunkKey, _ extent: ChunkExtent, headers: HTTPFields, regions: FileRegionResponses) -> Response {
        var headers = headers
        headers[Self.crcHeader] = CRCFormat.hex(extent.crc)
        let (counters, onDamage) = (counters, onDamage)
        return regions.response(headers: headers, offset: extent.offset, length: extent.length, open: extent.open) { result in
            switch result {
            case .success:
                counters.recordRead(bytes: extent.length)
            case .failure(let error as IOError) where error.errnoCode == EIO:
                Task { await onDamage(key.fileId, "found by a read: \(error)") }
            case .failure:
                break  // the client left
            }
        }
    }

    /// Deletes a chunk; with `?crc=`, only if the stored chunk has that CRC (`412 CRC_DIFFERS`
    /// otherwise), so that cleaning up a failed write can never delete another chunk under the
    /// same key.
    private func delete(_ request: Request, _ context: SpeedyRequestContext) async throws -> Response {
        let key = try key(context)
        if let text = request.uri.queryParameters["crc"] {
            guard let crc = CRCFormat.parse(String(text)) else { throw APIError.badRequest("crc must be 1 to 8 hex digits, got '\(text)'") }
            if let stored = store.info(key), stored.crc != crc {
                throw APIError(.crcDiffers, "chunk \(key) holds other bytes (CRC \(CRCFormat.hex(stored.crc))); not deleted")
            }
        }
        do {
            try await store.delete(key)
        } catch {
            throw Self.apiError(error)
        }
        return Response(status: .noContent)
    }

    /// The path's group, when it is the one this server serves.
    private func servedGroup(_ context: SpeedyRequestContext) throws -> UInt32 {
        let groupText = context.parameters.get("group") ?? ""
        guard let requested = UInt32(groupText) else { throw APIError.badRequest("group must be a whole number, got '\(groupText)'") }
        let group = membership.group
        guard group != GroupMembership.spareGroup else {
            throw APIError(.groupUnknown, "this chunkserver is a spare: it serves no group until the master gives it one")
        }
        guard requested == group else {
            throw APIError(.groupUnknown, "this chunkserver serves group \(group), not group \(requested)")
        }
        return group
    }

    private func list(_ request: Request, _ context: SpeedyRequestContext) throws -> Response {
        let group = try servedGroup(context)
        let after = try request.queryInteger("after", as: UInt64.self) ?? 0
        let limit = min(try request.queryInteger("limit", as: Int.self) ?? 1000, 10_000)
        guard limit > 0 else { throw APIError.badRequest("limit must be at least 1") }
        let chunks = store.list(group: group, after: after, limit: limit)
        let next = chunks.count == limit ? chunks.last?.fileId : nil
        var ages: [Int64]?
        if request.uri.queryParameters["ages"] == "true" {
            // A chunk deleted since the listing is as young as can be: it is no candidate for anything.
            ages = chunks.map { info in store.ageMs(ChunkKey(group: group, fileId: info.fileId)) ?? 0 }
        }
        return try JSONResponse.make(ChunkListing(group: group, chunks: chunks, nextAfter: next, agesMs: ages))
    }

    /// Parts a digests request may ask for: enough to narrow a range fast, few enough for a
    /// small answer.
    static let maxDigestParts = 256

    /// The count and hash of the chunks in each of `parts` near-equal ranges cutting [from, to):
    /// replicas compare these rather than their listings.
    private func digests(_ request: Request, _ context: SpeedyRequestContext) throws -> Response {
        let group = try servedGroup(context)
        let from = try request.queryInteger("from", as: UInt64.self) ?? 0
        let to = try request.queryInteger("to", as: UInt64.self) ?? .max
        let parts = try request.queryInteger("parts", as: Int.self) ?? 16
        guard from < to else { throw APIError.badRequest("from (\(from)) must be less than to (\(to))") }
        guard (1...Self.maxDigestParts).contains(parts) else {
            throw APIError.badRequest("parts must be 1 to \(Self.maxDigestParts), got \(parts)")
        }
        let ranges = store.digests(group: group, from: from, to: to, parts: parts)
        return try JSONResponse.make(ChunkRangeDigests(group: group, ranges: ranges))
    }

    /// Maps each store failure to its status and code.
    static func apiError(_ error: ChunkStoreError) -> APIError {
        switch error {
        case .notFound: APIError(.chunkUnknown, error.description)
        case .alreadyExists: APIError(.chunkExists, error.description)
        case .tooLarge: APIError(.chunkTooLarge, error.description)
        case .checksumMismatch: APIError(.checksumMismatch, error.description)
        case .corrupt: APIError(.chunkCorrupt, error.description)
        case .readOnly: APIError(.readOnly, error.description)
        case .io: APIError(.ioError, error.description)
        case .closed: APIError(.shuttingDown, error.description)
        }
    }
}

import CoreMetrics
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServerSupport
import SpeedyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent's peer port: other agents read chunks here, signed with the peer secret (the
/// router's ``PeerSignatureMiddleware``). `GET /v1/peer/blobs/<digest>?offset=O&length=L` answers
/// the chunk at `O` of `L` bytes from a blob in the cache, or from one still downloading as the
/// chunk's bytes arrive (it was announced as soon as it was claimed), paced by `--upload-rate`;
/// 404 when the agent does not have it.
struct PeerServeRoutes: Sendable {
    /// The longest chunk served.
    static let maxLength: UInt64 = 64 << 20
    /// Bytes sent per paced write.
    static let pieceBytes = 256 << 10

    let downloads: SwarmDownloads
    let cache: BlobCache
    let pacer: UploadPacer
    /// How long a request waits for a chunk this agent is still fetching.
    let chunkWait: Duration
    let served: ServedBytes
    let metrics: PeerMetrics
    let logger: Logger

    /// Bytes sent to peers since start (announced to the tracker).
    final class ServedBytes: Sendable {
        let total = Atomic<UInt64>(0)
    }

    /// The request target for a chunk; what a peer signs and sends.
    static func target(digest: Digest, offset: UInt64, length: UInt64) -> String {
        "/v1/peer/blobs/\(digest)?offset=\(offset)&length=\(length)"
    }

    /// A chunk request: the blob and the bytes of it asked for.
    struct ChunkRequest: Sendable, Equatable {
        var digest: Digest
        var offset: UInt64
        var length: UInt64
    }

    /// The request's digest and query, checked: a digest (`sha256:<64 hex>`), an offset of 0 to
    /// `Int64.max` and a length of 1 to ``maxLength`` (decimal digits only), ending no further
    /// than `Int64.max` (the largest file offset). Anything else is `400 BAD_REQUEST` saying what.
    static func parse(digest: String?, offset: String?, length: String?) throws(APIError) -> ChunkRequest {
        let usage = "GET /v1/peer/blobs/<digest>?offset=O&length=L"
        guard let digest, let parsed = Digest(parsing: digest) else {
            throw .badRequest("\(usage): <digest> must be sha256:<64 hex> or sha512:<128 hex>")
        }
        guard let offset, let start = decimal(offset), start <= UInt64(Int64.max) else {
            throw .badRequest("\(usage): O must be a number of bytes from 0 to \(Int64.max)")
        }
        guard let length, let count = decimal(length), (1...maxLength).contains(count) else {
            throw .badRequest("\(usage): L must be a number of bytes from 1 to \(maxLength)")
        }
        guard start <= UInt64(Int64.max) - count else {
            throw .badRequest("\(usage): O + L must be at most \(Int64.max)")
        }
        return ChunkRequest(digest: parsed, offset: start, length: count)
    }

    /// Whether `length` bytes at `offset` lie within a blob of `size` bytes.
    static func fits(offset: UInt64, length: UInt64, size: UInt64) -> Bool {
        offset <= size && length <= size - offset
    }

    /// A decimal number of digits alone (no sign, no spaces), nil when it is not one or overflows.
    private static func decimal(_ text: String) -> UInt64? {
        guard (1...20).contains(text.utf8.count), text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return UInt64(text)
    }

    /// Adds the route to `router`.
    func register(on router: Router<SpeedyRequestContext>) {
        router.get("/v1/peer/blobs/:digest") { request, context in
            try await self.serve(request, context: context)
        }
    }

    private func serve(_ request: Request, context: SpeedyRequestContext) async throws -> Response {
        let chunk: ChunkRequest
        do throws(APIError) {
            chunk = try Self.parse(
                digest: context.parameters.get("digest"), offset: request.uri.queryParameters.get("offset"),
                length: request.uri.queryParameters.get("length"))
        } catch {
            return try error.response(from: request, context: context)
        }
        let (digest, offset, length) = (chunk.digest, chunk.offset, chunk.length)
        if let partial = downloads.partial(of: digest), let index = partial.chunk(at: offset, length: length),
            partial.progress(index).state != .missing
        {
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: ResponseBody(contentLength: Int(length)) { writer in
                    try await self.stream(partial, index, to: &writer)
                })
        }
        let data: ByteBuffer
        switch await readCached(digest, offset: offset, length: length) {
        case .bytes(let bytes):
            data = bytes
        case .absent:
            return try APIError(.blobUnknown, "this agent does not hold that chunk").response(from: request, context: context)
        case .pastTheEnd(let size):
            return try APIError(.badRequest, "bytes \(offset) to \(offset + length - 1) are past the end of \(digest) (\(size) bytes)")
                .response(from: request, context: context)
        }
        return Response(
            status: .ok, headers: [.contentType: "application/octet-stream"],
            body: ResponseBody(contentLength: data.readableBytes) { writer in
                var rest = data
                while let piece = rest.readSlice(length: min(Self.pieceBytes, rest.readableBytes)), piece.readableBytes > 0 {
                    try await send(piece, to: &writer)
                }
                try await writer.finish(nil)
            })
    }

    /// Sends chunk `index` of a download in progress as its bytes reach the file (cut-through:
    /// a chunk passes along a chain of agents without waiting at each for its last byte). The
    /// response is cut short when the bytes stop for ``chunkWait``, the attempt that wrote them is
    /// thrown away, or the download fails: the peer then asks elsewhere, and checks the CRC of
    /// whatever it got whole.
    private func stream(_ partial: PartialBlob, _ index: Int, to writer: inout any ResponseBodyWriter) async throws {
        let length = Int(partial.map.chunks[index].length)
        let base = partial.offsets[index]
        var sent = 0
        var generation: Int?
        while sent < length {
            let now = partial.progress(index)
            if generation == nil { generation = now.generation }
            guard now.generation == generation, now.state != .missing else { throw PeerError.blobUnavailable("chunk \(index) of \(partial.digest) was thrown away") }
            if now.available > sent {
                let count = min(Self.pieceBytes, now.available - sent)
                let piece = try await partial.file.read(at: base + UInt64(sent), count: count)
                // Read after a reset: those bytes may be the next attempt's.
                guard partial.progress(index).generation == generation else { throw PeerError.blobUnavailable("chunk \(index) was thrown away") }
                try await send(piece, to: &writer)
                sent += count
                continue
            }
            guard try await changes(partial, index, from: now.version) else {
                throw PeerError.blobUnavailable("chunk \(index) of \(partial.digest): no bytes for \(chunkWait)")
            }
        }
        try await writer.finish(nil)
    }

    /// Whether chunk `index` changes from `version` within ``chunkWait``.
    private func changes(_ partial: PartialBlob, _ index: Int, from version: Int) async throws -> Bool {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await partial.waitChange(index, from: version)
                return true
            }
            group.addTask {
                try await Task.sleep(for: chunkWait)
                return false
            }
            defer { group.cancelAll() }
            return try await group.next() ?? false
        }
    }

    /// Sends one piece, paced by `--upload-rate`, and counts it.
    private func send(_ piece: ByteBuffer, to writer: inout any ResponseBodyWriter) async throws {
        try await pacer.take(piece.readableBytes)
        try await writer.write(piece)
        served.total.add(UInt64(piece.readableBytes), ordering: .relaxed)
        metrics.uploadedBytes.increment(by: Int64(piece.readableBytes))
    }

    /// What the cache has of a chunk request.
    private enum Cached: Sendable {
        case bytes(ByteBuffer)
        /// Not cached (or not readable).
        case absent
        /// Cached, but the range goes past the end of the blob, which is `size` bytes.
        case pastTheEnd(size: UInt64)
    }

    /// Bytes of a cached blob, read without touching its place in the LRU order.
    private func readCached(_ digest: Digest, offset: UInt64, length: UInt64) async -> Cached {
        let path = cache.path(of: digest)
        let read = try? await NIOThreadPool.singleton.runIfActive { () throws -> Cached in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return .absent }
            defer { close(fd) }
            var status = stat()
            guard fstat(fd, &status) == 0 else { return .absent }
            let size = UInt64(max(status.st_size, 0))
            // Checked against the file before any read: an offset past the end is never a file offset.
            guard Self.fits(offset: offset, length: length, size: size) else { return .pastTheEnd(size: size) }
            return .bytes(try CacheTempFile.pread(fd, path: path, at: offset, count: Int(length)))
        }
        return read ?? .absent
    }
}

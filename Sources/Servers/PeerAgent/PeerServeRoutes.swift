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

    /// Adds the route to `router`.
    func register(on router: Router<SpeedyRequestContext>) {
        router.get("/v1/peer/blobs/:digest") { request, context in
            try await self.serve(request, context: context)
        }
    }

    private func serve(_ request: Request, context: SpeedyRequestContext) async throws -> Response {
        guard let digest = context.parameters.get("digest").flatMap({ Digest(parsing: $0) }),
            let offset = request.uri.queryParameters.get("offset").flatMap({ UInt64($0) }),
            let length = request.uri.queryParameters.get("length").flatMap({ UInt64($0) }),
            (1...Self.maxLength).contains(length), offset <= UInt64.max - length
        else {
            return try APIError(.badRequest, "GET /v1/peer/blobs/<digest>?offset=O&length=L, L from 1 to \(Self.maxLength)")
                .response(from: request, context: context)
        }
        if let partial = downloads.partial(of: digest), let index = partial.chunk(at: offset, length: length),
            partial.progress(index).state != .missing
        {
            return Response(
                status: .ok, headers: [.contentType: "application/octet-stream"],
                body: ResponseBody(contentLength: Int(length)) { writer in
                    try await self.stream(partial, index, to: &writer)
                })
        }
        guard let data = await readCached(digest, offset: offset, length: length) else {
            return try APIError(.blobUnknown, "this agent does not hold that chunk").response(from: request, context: context)
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

    /// Bytes of a cached blob, read without touching its place in the LRU order.
    private func readCached(_ digest: Digest, offset: UInt64, length: UInt64) async -> ByteBuffer? {
        let path = cache.path(of: digest)
        return try? await NIOThreadPool.singleton.runIfActive {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw PeerError.cache("\(path) not cached") }
            defer { close(fd) }
            return try CacheTempFile.pread(fd, path: path, at: offset, count: Int(length))
        }
    }
}

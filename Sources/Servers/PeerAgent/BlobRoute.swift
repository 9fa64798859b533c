import AsyncHTTPClient
import CoreMetrics
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import SpeedyCore

/// A whole blob GET through the agent. The registry is asked first, with the client's
/// credentials, for the blob's chunk map: that answer is the authorization check, so nothing is
/// served (not even from the cache) before the registry said this client may pull it. Then the
/// blob comes from the cache, else from the blob's download (``SwarmDownloads``: peers, the
/// chunkservers, the registry), else in order from the chunkservers and the registry's blob GET;
/// every path hashes what it sends and never completes a response whose bytes do not verify.
struct BlobRoute: Sendable {
    let upstream: RegistryUpstream
    let cache: BlobCache
    let fetcher: ChunkFetcher
    let downloads: SwarmDownloads
    /// Never ask for chunk maps: every blob through the registry's blob GET.
    let blobsFromRegistry: Bool
    let metrics: PeerMetrics
    let logger: Logger

    /// Answers `GET /v2/<name>/blobs/<digest>` (`target` as the client sent it).
    func get(name: String, digest: Digest, target: String, clientHeaders: HTTPFields) async throws -> Response {
        let answer: RegistryUpstream.ChunkMapAnswer =
            blobsFromRegistry ? .unsupported : await upstream.chunkMap(name: name, digest: digest, clientHeaders: clientHeaders)
        switch answer {
        case .refused(let reply):
            return upstream.response(reply, head: false)
        case .map(let map):
            guard map.size == map.chunks.reduce(0, { $0 + UInt64($1.length) }), map.digest == digest.description else {
                logger.warning("chunk map of \(digest) is inconsistent (size \(map.size), digest \(map.digest)); using the blob GET")
                return try await relay(target: target, digest: digest, clientHeaders: clientHeaders)
            }
            // Opened before the 200: a blob evicted a moment later is still served whole.
            if let blob = cache.openForReading(digest), blob.size == map.size {
                metrics.cacheHits.increment()
                return serve(blob, digest: digest)
            }
            return serveChunks(map, name: name, digest: digest, clientHeaders: clientHeaders)
        case .unsupported:
            if cache.lookup(digest) != nil {
                // A registry without chunk maps: its blob HEAD, with the client's credentials, decides.
                let head = try await upstream.send(.head, target, clientHeaders: clientHeaders)
                // A refusal is answered by the GET itself, with its error body.
                guard head.status == .ok else { return try await relay(target: target, digest: digest, clientHeaders: clientHeaders) }
                if let blob = cache.openForReading(digest) {
                    metrics.cacheHits.increment()
                    return serve(blob, digest: digest)
                }
            }
            return try await relay(target: target, digest: digest, clientHeaders: clientHeaders)
        }
    }

    /// Rethrows a client's going (``VerifiedSender/ClientGone``) after a note in the log: its
    /// response ends, but nothing failed that `speedy_peer_failed_downloads_total` counts.
    static func rethrowIfClientGone(_ error: any Error, digest: Digest, logger: Logger) throws {
        guard let gone = error as? VerifiedSender.ClientGone else { return }
        logger.info("blob \(digest): the client went away mid-response (\(gone.underlying))")
        throw gone
    }

    /// The headers of a blob answered by the agent itself.
    static func headers(_ digest: Digest) -> HTTPFields {
        [
            .contentType: "application/octet-stream", .eTag: "\"\(digest)\"", HTTPField.Name("Docker-Content-Digest")!: digest.description,
            HTTPField.Name("Docker-Distribution-API-Version")!: "registry/2.0",
        ]
    }

    /// The cached blob `blob` (opened already), read from disk and checked against `digest` as it goes out.
    func serve(_ blob: BlobCache.OpenBlob, digest: Digest) -> Response {
        Response(
            status: .ok, headers: Self.headers(digest),
            body: ResponseBody(contentLength: Int(blob.size)) { writer in try await self.sendCached(blob, digest: digest, to: &writer) })
    }

    private func sendCached(_ blob: BlobCache.OpenBlob, digest: Digest, to writer: inout any ResponseBodyWriter) async throws {
        var sender = VerifiedSender(digest: digest, size: blob.size, sink: nil, cache: cache, metrics: metrics)
        do {
            try await CachedBlobReader.send(blob, digest: digest, to: &sender, writer: &writer)
            try await sender.finish(to: &writer)
        } catch {
            // Only that very file goes: a good copy committed since stays.
            if case PeerError.digestMismatch = error { cache.remove(digest, file: blob) }
            if case PeerError.cache = error { cache.remove(digest, file: blob) }
            try Self.rethrowIfClientGone(error, digest: digest, logger: logger)
            metrics.failedDownloads.increment()
            logger.error("cached blob \(digest): \(error); response cut short")
            throw error
        }
    }

    /// The blob from its download (every pull of it on the host follows one), into the cache.
    func serveChunks(_ map: ChunkMap, name: String, digest: Digest, clientHeaders: HTTPFields) -> Response {
        Response(
            status: .ok, headers: Self.headers(digest),
            body: ResponseBody(contentLength: Int(map.size)) { writer in
                try await self.sendChunks(map, name: name, digest: digest, clientHeaders: clientHeaders, to: &writer)
            })
    }

    private func sendChunks(_ map: ChunkMap, name: String, digest: Digest, clientHeaders: HTTPFields, to writer: inout any ResponseBodyWriter) async throws {
        metrics.cacheMisses.increment()
        var sender = VerifiedSender(digest: digest, size: map.size, sink: nil, cache: cache, metrics: metrics)
        do {
            var next = 0
            if let partial = downloads.join(map, digest: digest, name: name, credentials: RegistryUpstream.credentials(clientHeaders)) {
                next = try await follow(partial, into: &sender, writer: &writer)
            }
            if next < map.chunks.count {
                try await sendInOrder(map, from: next, name: name, digest: digest, clientHeaders: clientHeaders, into: &sender, writer: &writer)
            }
            try await sender.finish(to: &writer)
        } catch {
            try Self.rethrowIfClientGone(error, digest: digest, logger: logger)
            metrics.failedDownloads.increment()
            logger.error("blob \(digest): \(error); response cut short")
            throw error
        }
    }

    /// Sends the download's chunks in blob order as they arrive; returns how many were sent,
    /// short of all of them when the download's disk failed (the caller sends the rest another
    /// way). Any other failure of the download (a chunk no source served, a wrong digest) is
    /// thrown: every source was tried already.
    private func follow(_ partial: PartialBlob, into sender: inout VerifiedSender, writer: inout any ResponseBodyWriter) async throws -> Int {
        var index = 0
        while index < partial.count {
            let piece: ByteBuffer
            do {
                try await partial.wait(for: index)
                piece = try await partial.file.read(at: partial.offsets[index], count: Int(partial.map.chunks[index].length))
            } catch PeerError.cache(let reason) {
                // Only the disk failed the download: the chunks are still there to fetch.
                logger.warning("blob \(partial.digest): the download stopped at chunk \(index) of \(partial.count) (\(reason)); the rest in order, uncached")
                return index
            }
            try await sender.send(piece, to: &writer)
            index += 1
        }
        return index
    }

    /// Chunks `first…` in order from the chunkservers, then what they miss from the registry.
    private func sendInOrder(
        _ map: ChunkMap, from first: Int, name: String, digest: Digest, clientHeaders: HTTPFields,
        into sender: inout VerifiedSender, writer: inout any ResponseBodyWriter
    ) async throws {
        guard let failed = try await fetcher.fetchInOrder(map.chunks[first...], deliver: { piece in try await sender.send(piece, to: &writer) })
        else { return }
        let stopped = first + failed
        let offset = map.chunks[..<stopped].reduce(0) { $0 + UInt64($1.length) }
        logger.warning("blob \(digest): no member served chunk \(stopped) of \(map.chunks.count); the rest from the registry, from byte \(offset)")
        try await relayRest(name: name, digest: digest, from: offset, clientHeaders: clientHeaders, into: &sender, writer: &writer)
    }

    /// A temporary cache file for a blob of `size` bytes, its room reserved in the cache; nil
    /// when it could not be cached.
    private func temporaryFile(size: UInt64) -> CacheTempFile? {
        guard cache.reserve(size) else { return nil }
        do {
            return try CacheTempFile(path: cache.temporaryPath(), reserved: size)
        } catch {
            cache.release(size)
            logger.warning("\(error); serving without caching")
            return nil
        }
    }

    /// Bytes `offset…` of the blob from the registry's blob GET with a `Range`.
    private func relayRest(
        name: String, digest: Digest, from offset: UInt64, clientHeaders: HTTPFields,
        into sender: inout VerifiedSender, writer: inout any ResponseBodyWriter
    ) async throws {
        let target = "/v2/\(name)/blobs/\(digest)"
        let response = try await upstream.send(.get, target, clientHeaders: RegistryUpstream.credentials(clientHeaders), extra: [("Range", "bytes=\(offset)-"), ("Accept-Encoding", "identity")])
        // A 200 is the whole blob (a registry that ignores Range): skip what was sent already.
        var skip: UInt64
        switch response.status.code {
        case 206:
            try RegistryUpstream.checkContentRange(response.headers, from: offset, total: sender.size)
            skip = 0
        case 200: skip = offset
        default: throw PeerError.blobUnavailable("the registry answered \(response.status.code) to bytes \(offset)- of \(digest)")
        }
        for try await piece in response.body {
            metrics.imageserverBytes.increment(by: Int64(piece.readableBytes))
            var piece = piece
            if skip > 0 {
                let dropped = Int(min(skip, UInt64(piece.readableBytes)))
                piece.moveReaderIndex(forwardBy: dropped)
                skip -= UInt64(dropped)
            }
            try await sender.send(piece, to: &writer)
        }
    }

    /// The registry's own blob GET streamed through, checked against `digest`, and cached when
    /// it verifies (a registry without chunk maps, or an inconsistent map).
    func relay(target: String, digest: Digest, clientHeaders: HTTPFields) async throws -> Response {
        // The bytes are checked against the digest: no proxy may compress them on the way.
        let response = try await upstream.send(.get, target, clientHeaders: clientHeaders, extra: [("Accept-Encoding", "identity")])
        guard response.status == .ok else { return upstream.relay(response, head: false) }
        metrics.cacheMisses.increment()
        let length = RegistryUpstream.contentLength(response.headers)
        return Response(
            status: .ok, headers: RegistryUpstream.fields(response.headers),
            body: ResponseBody(contentLength: length.flatMap { Int(exactly: $0) }) { writer in
                try await self.relayBody(response, length: length, digest: digest, to: &writer)
            })
    }

    private func relayBody(_ response: HTTPClientResponse, length: UInt64?, digest: Digest, to writer: inout any ResponseBodyWriter) async throws {
        var sender = VerifiedSender(digest: digest, size: length, sink: length.flatMap { temporaryFile(size: $0) }, cache: cache, metrics: metrics)
        do {
            for try await piece in response.body {
                metrics.imageserverBytes.increment(by: Int64(piece.readableBytes))
                try await sender.send(piece, to: &writer)
            }
            try await sender.finish(to: &writer)
        } catch {
            sender.abandon()
            try Self.rethrowIfClientGone(error, digest: digest, logger: logger)
            metrics.failedDownloads.increment()
            logger.error("blob \(digest) from the registry: \(error); response cut short")
            throw error
        }
    }
}

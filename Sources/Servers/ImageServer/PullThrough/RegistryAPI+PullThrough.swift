import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RegistryClient
import ServerSupport
import SpeedyCore

/// The pull-through cache (docs/registry.md "Pull-through cache"): manifests and blobs of the
/// repositories an upstream caches come from it on a miss, are stored as they pass, and are
/// served from the cluster after. Tags are checked against the upstream once their TTL is out;
/// a cached copy is served, and the staleness logged, while the upstream is down.
extension RegistryAPI {
    // MARK: Manifests

    /// The manifest `reference` of `name`, a repository `source` caches as `remote`: the cached
    /// one while it is fresh (a digest always is, a tag for its TTL), else the upstream's, stored
    /// before it is returned; nil when neither has it.
    func pullThroughManifest(name: String, reference: String, source: PullThroughCache.Source, remote: String) async throws
        -> ManifestRecord?
    {
        guard let cache = pullThrough else { return try await meta.manifest(reference, in: name) }
        let local = try await meta.manifest(reference, in: name)
        let isTag = Digest(parsing: reference) == nil
        if let local, !isTag || cache.isFresh(reference, in: name, ttl: source.upstream.tagTTL) { return local }
        do {
            if let local, let current = try await source.client.manifestDigest(remote, reference: reference), current == local.digest {
                cache.markChecked(reference, in: name)
                return local
            }
            let record = try await cache.manifests.run(name + "@" + reference) {
                try await fetchManifest(name: name, reference: reference, source: source, remote: remote)
            }
            if isTag { cache.markChecked(reference, in: name) }
            return record
        } catch {
            guard let upstreamError = error as? RegistryClientError else { throw error }
            if let local {
                // Checked again after the TTL, not on every pull: a down upstream costs each pull nothing.
                cache.markChecked(reference, in: name)
                logger.warning("serving \(name):\(reference) from the cache unchecked (\(local.digest)): upstream \(source.upstream.url): \(upstreamError)")
                return local
            }
            if case .notFound = upstreamError { return nil }
            throw Self.ociError(upstreamError, upstream: source.upstream)
        }
    }

    /// Fetches manifest `reference` from the upstream, checks it parses, and stores it (with the
    /// tag, for a tag). Its blobs are not required to be here: each comes on its first pull.
    private func fetchManifest(name: String, reference: String, source: PullThroughCache.Source, remote: String) async throws
        -> ManifestRecord
    {
        let fetched = try await source.client.manifest(remote, reference: reference)
        let parsed: ParsedManifest
        do {
            parsed = try ManifestParser.parse(fetched.content, contentType: fetched.mediaType)
        } catch {
            throw RegistryClientError.invalidAnswer("manifest \(remote):\(reference) is not one this registry stores: \(error.reason)")
        }
        // No reference checks (nil): the blobs come later. The references are still recorded, so
        // garbage collection keeps what the manifest names once it is here.
        let record = ManifestRecord(
            repository: name, digest: fetched.digest, mediaType: parsed.mediaType, content: fetched.content, subject: parsed.subject,
            artifactType: parsed.artifactType, annotations: parsed.annotations, references: nil)
        try await meta.putManifest(record, tag: Digest(parsing: reference) == nil ? reference : nil)
        logger.info("cached manifest \(name):\(reference) (\(fetched.digest)) from \(source.upstream.url)")
        return record
    }

    // MARK: Blobs

    /// A GET or HEAD of blob `digest` of `name`, which the cluster does not have linked there:
    /// linked from another repository when stored, else filled from the upstream (once, however
    /// many pulls ask) and streamed as its chunks land.
    func pullThroughBlob(
        _ request: Request, _ context: RegistryRequestContext, name: String, digest: Digest, head: Bool, source: PullThroughCache.Source,
        remote: String
    ) async throws -> Response {
        guard let cache = pullThrough else { throw OCIError.blobUnknown(digest.description) }
        let fill: UpstreamBlobFill
        do {
            if let running = cache.fill(of: digest) {
                fill = running
            } else {
                fill = try await cache.fillStarts.run(digest) {
                    try await startFill(name: name, remote: remote, digest: digest, source: source)
                }
            }
        } catch {
            throw Self.fillError(error, digest: digest, upstream: source.upstream)
        }
        if let stored = fill.stored { return try await serveBlob(stored, request, context, head: head) }
        if head, let size = fill.size {
            var headers = Self.blobHeaders(digest)
            headers[.contentLength] = String(size)
            return Response(status: .ok, headers: headers)
        }
        guard !head, let size = fill.size, let count = fill.chunkCount, count > 0, request.headers[.range] == nil else {
            // A range, an empty blob or no length from the upstream: answered once the blob is in.
            do {
                return try await serveBlob(try await fill.record(), request, context, head: head)
            } catch {
                throw Self.fillError(error, digest: digest, upstream: source.upstream)
            }
        }
        return try await streamFill(fill, context, size: size, count: count, upstream: source.upstream)
    }

    /// The answer to a GET of a blob still filling: `200` once its first chunk is in hand (the
    /// last, for a one-chunk blob, once the whole blob is verified), then each chunk as it lands.
    /// A fill that fails later cuts the answer short of its `Content-Length`.
    private func streamFill(_ fill: UpstreamBlobFill, _ context: RegistryRequestContext, size: UInt64, count: Int, upstream: Upstream)
        async throws -> Response
    {
        let stream = stream(context)
        @Sendable func fetch(_ index: Int) async throws -> BlobStream.Fetched {
            let ref = try await fill.chunk(index)
            return try await stream.fetch(BlobStream.Piece(ref: ref, start: 0, length: Int(ref.length)))
        }
        let first: BlobStream.Fetched
        do {
            first = try await fetch(0)
        } catch {
            throw Self.fillError(error, digest: fill.digest, upstream: upstream)
        }
        let handoff = BlobStream.FirstChunk(first)
        var headers = Self.blobHeaders(fill.digest)
        headers[.contentLength] = String(size)
        RequestNote.current?.streamsBody = true
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(contentLength: Int(size)) { writer in
                for index in 0..<count {
                    let fetched: BlobStream.Fetched
                    if let first = handoff.take() { fetched = first } else { fetched = try await fetch(index) }
                    defer { fetched.held.release() }
                    try await writer.write(fetched.data)
                }
                try await writer.finish(nil)
            })
    }

    /// Asks the upstream for the blob and, once its answer's head is in, starts writing it into
    /// the cluster in a task of its own (it goes on when the pull that started it hangs up). A
    /// blob stored for another repository is linked instead: no upstream request.
    private func startFill(name: String, remote: String, digest: Digest, source: PullThroughCache.Source) async throws -> UpstreamBlobFill {
        if let stored = try? await meta.mountBlob(digest, into: name, from: nil) {
            return UpstreamBlobFill(recorded: stored, chunkSize: configuration.chunkSize)
        }
        let blob = try await source.client.blob(remote, digest: digest)
        let fill = UpstreamBlobFill(digest: digest, size: blob.size, chunkSize: configuration.chunkSize)
        pullThrough?.started(fill)
        // A body that trickles in (a byte before each read limit) would hold its chunks' budget
        // and its waiting pulls for ever: past its deadline the fill is cancelled, and fails.
        let limit = Self.fillDeadline(size: blob.size)
        Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await runFill(fill, body: blob.body, name: name, upstream: source.upstream) }
                group.addTask { try? await Task.sleep(for: limit) }
                await group.next()
                group.cancelAll()
            }
        }
        return fill
    }

    /// How long a fill of `size` bytes may take: 5 minutes, plus a second for every 256 KiB
    /// (an upstream slower than that is not one to cache from); an hour when the size is unknown.
    static func fillDeadline(size: UInt64?) -> Duration {
        guard let size else { return .seconds(3600) }
        return .seconds(300) + .seconds(Int64(min(size / (256 << 10), 1 << 40)))
    }

    /// Writes the upstream's body into chunks as any push (``BlobWriter``: the chunks held while
    /// they stream, dropped if anything fails), then records the blob if its digest is the one
    /// asked for. A body with other bytes leaves nothing stored.
    private func runFill(_ fill: UpstreamBlobFill, body: HTTPClientResponse.Body, name: String, upstream: Upstream) async {
        let client = "upstream:\(upstream.prefix)"
        let meta = self.meta
        let limits = configuration.uploadLimits
        let holder = ChunkHolder(
            meta: meta, session: .lazy { try await meta.createUpload(repository: name, client: client, limits: limits).id },
            interval: configuration.holdInterval, deadline: configuration.holdDeadline)
        let chunker = ChunkedUpload(
            io: io, budget: budget, chunkSize: configuration.chunkSize, inFlight: configuration.writesInFlightPerUpload, client: client)
        let writer = BlobWriter(
            io: io, meta: meta, chunker: chunker, holder: holder, continuing: nil, hasher: SHA256Hasher(), logger: logger
        ) { ref, index in await fill.land(ref, at: index) }
        let digest = fill.digest
        do {
            try await writer.write(body, declared: DeclaredLength(contentRange: nil, contentLength: fill.size))
            try await writer.commit(digest: digest, repository: name) { stored in
                await self.storedBlobHolds(stored, digest: digest, client: client)
            }
            guard let record = try await meta.blob(digest, in: name) else { throw OCIError.blobUnknown(digest.description) }
            await fill.finish(.success(record))
            logger.info("cached blob \(digest) of \(name) from \(upstream.url) (\(record.size) bytes)")
        } catch {
            await fill.finish(.failure(error))
            logger.warning("blob \(digest) of \(name) from \(upstream.url) is not cached: \(error)")
        }
        pullThrough?.ended(fill)
    }

    // MARK: Errors

    /// The OCI answer to an upstream's failure.
    static func ociError(_ error: RegistryClientError, upstream: Upstream) -> OCIError {
        switch error {
        case .notFound(let what):
            return OCIError(.nameUnknown, "the upstream \(upstream.url) has no \(what)")
        case .rateLimited, .unavailable:
            var answer = OCIError(.unavailable, "the upstream \(upstream.url) cannot serve this now and the cache has no copy: \(error)")
            answer.headers[.retryAfter] = "10"
            return answer
        case .denied, .invalidAnswer:
            return OCIError(.unavailable, "the upstream \(upstream.url): \(error)", status: .upstreamFailed)
        }
    }

    /// The OCI answer to a failed fill of blob `digest`.
    static func fillError(_ error: any Error, digest: Digest, upstream: Upstream) -> any Error {
        if let upstreamError = error as? RegistryClientError {
            if case .notFound = upstreamError { return OCIError.blobUnknown(digest.description) }
            return ociError(upstreamError, upstream: upstream)
        }
        if let answer = error as? OCIError, answer.code == .digestInvalid || answer.code == .sizeInvalid {
            return OCIError(.unavailable, "the upstream \(upstream.url) sent other bytes for \(digest): \(answer.message)", status: .upstreamFailed)
        }
        if let fillError = error as? UpstreamFillError {
            var answer = OCIError(.unavailable, "\(fillError)")
            answer.headers[.retryAfter] = "1"
            return answer
        }
        return error
    }
}

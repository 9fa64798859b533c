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
            // One check or fetch per tag at a time: the pulls that arrive meanwhile share it.
            return try await cache.manifests.run(name + "@" + reference) {
                // Looked at again inside the run: one that ended between the look above and
                // this run has stored and checked it already.
                let local = try await meta.manifest(reference, in: name)
                if let local, !isTag || cache.isFresh(reference, in: name, ttl: source.upstream.tagTTL) { return local }
                let record: ManifestRecord
                if let local, let current = try await source.client.manifestDigest(remote, reference: reference), current == local.digest {
                    record = local
                } else {
                    record = try await fetchManifest(name: name, reference: reference, source: source, remote: remote)
                }
                // Marked before the run ends, so no pull that comes after it checks again.
                if isTag { cache.markChecked(reference, in: name) }
                return record
            }
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
        // Fills are per repository: each links the blob where its pulls asked for it.
        let key = PullThroughCache.FillKey(repository: name, digest: digest)
        let fill: UpstreamBlobFill
        do {
            if let running = cache.fill(of: key) {
                fill = running
            } else {
                let mayMountAnywhere = context.access.auth == nil
                fill = try await cache.fillStarts.run(key) {
                    // Started between the look above and this run: join it.
                    if let running = cache.fill(of: key) { return running }
                    return try await startFill(name: name, remote: remote, digest: digest, source: source, mayMountAnywhere: mayMountAnywhere)
                }
            }
        } catch {
            throw Self.fillError(error, digest: digest, upstream: source.upstream)
        }
        if let stored = fill.stored { return try await serveBlob(stored, request, context, head: head) }
        if head, let size = fill.size, size > 0 {
            // As for a GET: the answer says the blob is here once its first chunk is.
            do {
                _ = try await fill.chunk(0)
            } catch {
                throw Self.fillError(error, digest: digest, upstream: source.upstream)
            }
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
    /// blob the cluster stores for another repository is linked instead, without its bytes: at
    /// once when there are no logins, and with logins only once the upstream confirms it serves
    /// the blob here (a `HEAD`), so no one reads another repository's blob by naming its digest.
    private func startFill(name: String, remote: String, digest: Digest, source: PullThroughCache.Source, mayMountAnywhere: Bool)
        async throws -> UpstreamBlobFill
    {
        // Linked here by a fill that ended between the pull's own look and this one.
        if let linked = try await meta.blob(digest, in: name) {
            return UpstreamBlobFill(recorded: linked, repository: name, chunkSize: configuration.chunkSize)
        }
        if try await meta.blob(digest, in: nil) != nil {
            var mayMount = mayMountAnywhere
            if !mayMount { mayMount = try await source.client.hasBlob(remote, digest: digest) }
            if mayMount, let stored = try? await meta.mountBlob(digest, into: name, from: nil) {
                return UpstreamBlobFill(recorded: stored, repository: name, chunkSize: configuration.chunkSize)
            }
        }
        let blob = try await source.client.blob(remote, digest: digest)
        if let size = blob.size, size > Self.maximumFillBytes {
            throw RegistryClientError.invalidAnswer("blob \(digest) is \(size) bytes, over the \(Self.maximumFillBytes) a cache takes")
        }
        let fill = UpstreamBlobFill(digest: digest, repository: name, size: blob.size, chunkSize: configuration.chunkSize)
        pullThrough?.started(fill)
        Task { await runFill(fill, body: UpstreamBody(blob.body, floor: Self.fillRateFloor), name: name, upstream: source.upstream) }
        return fill
    }

    /// The largest blob a fill takes (1 TiB): a larger `Content-Length` is an upstream to distrust.
    static let maximumFillBytes: UInt64 = 1 << 40
    /// A fill whose upstream sends less than 256 KiB a second on average, once 5 minutes have
    /// passed, fails: a body that trickles in cannot hold the fill's memory and its pulls for ever.
    static let fillRateFloor = UpstreamBody<HTTPClientResponse.Body>.Floor(after: .seconds(300), bytesPerSecond: 256 << 10)

    /// Writes the upstream's body into chunks as any push (``BlobWriter``: the chunks held while
    /// they stream, dropped if anything fails), then records the blob if its digest is the one
    /// asked for. A body with other bytes leaves nothing stored.
    private func runFill(_ fill: UpstreamBlobFill, body: UpstreamBody<HTTPClientResponse.Body>, name: String, upstream: Upstream) async {
        // Each fill its own share of the memory budget, and no cap on sessions: fills are bounded
        // by the blobs pulls ask for, one per repository and digest.
        let client = "upstream:\(upstream.prefix):\(fill.digest.hex.prefix(16))"
        let meta = self.meta
        let limits = UploadLimits.unlimited
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

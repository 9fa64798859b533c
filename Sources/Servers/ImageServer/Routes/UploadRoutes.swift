import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServerSupport
import SpeedyCore

extension RegistryAPI {
    /// `POST /v2/<name>/blobs/uploads/`: a mount (`?mount=&from=`), a whole blob in one request
    /// (`?digest=`), or a new upload session.
    func startUpload(_ request: Request, _ context: RegistryRequestContext, name: String) async throws -> Response {
        let query = request.uri.queryParameters
        if let mount = query["mount"] {
            let digest = try digest(String(mount))
            let from = query["from"].map(String.init)
            // With logins, a blob is mounted only from a repository the caller may pull.
            let mayMount = context.access.auth == nil || (from.map { context.access.may(.pull, on: $0) } ?? false)
            do {
                if mayMount {
                    _ = try await meta.mountBlob(digest, into: name, from: from)
                    return blobCreated(name: name, digest: digest)
                }
            } catch {
                // Not mountable: the spec says to answer with a new upload session instead.
                guard case .blobUnknown = error else { throw error }
            }
        } else if let text = query["digest"] {
            let digest = try uploadDigest(String(text))
            if let linked = try await linkStored(request, context, name: name, digest: digest, session: nil) { return linked }
            // No session yet: one is opened only if the body streams long enough to need a hold.
            let meta = self.meta
            let limits = configuration.uploadLimits
            let holds = ChunkHolder.Session.lazy { try await meta.createUpload(repository: name, client: context.client, limits: limits).id }
            let writer = blobWriter(context, holds: holds, continuing: nil, hasher: SHA256Hasher())
            try await writer.write(request.body, declared: declaredLength(request, contentRange: nil))
            return try await commit(writer, name: name, digest: digest, client: context.client)
        }
        let session = try await meta.createUpload(repository: name, client: context.client, limits: configuration.uploadLimits)
        return uploadAccepted(name: name, session: session, status: .accepted)
    }

    /// `PATCH /v2/<name>/blobs/uploads/<id>`: appends the body (optionally with Content-Range).
    func patchUpload(_ request: Request, _ context: RegistryRequestContext, name: String, id: String) async throws -> Response {
        let session = try await session(id, name: name)
        let writer = try await receive(request, context, into: session, name: name)
        do {
            return uploadAccepted(name: name, session: try await writer.append(), status: .accepted)
        } catch MetadataError.uploadOffsetMismatch(_, let actual) {
            throw outOfOrder(name: name, id: id, offset: actual)
        }
    }

    /// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: appends an optional last body, checks the digest
    /// of the whole blob and makes it visible.
    func finishUpload(_ request: Request, _ context: RegistryRequestContext, name: String, id: String) async throws -> Response {
        let digest = try uploadDigest(request.uri.queryParameters["digest"].map(String.init))
        let session = try await session(id, name: name)
        if session.offset == 0, request.headers[.contentRange] == nil,
            let linked = try await linkStored(request, context, name: name, digest: digest, session: id)
        {
            return linked
        }
        let writer = try await receive(request, context, into: session, name: name)
        return try await commit(writer, name: name, digest: digest, client: context.client)
    }

    /// `GET /v2/<name>/blobs/uploads/<id>`: where the upload stands.
    func uploadStatus(name: String, id: String) async throws -> Response {
        uploadAccepted(name: name, session: try await session(id, name: name), status: .noContent)
    }

    /// `DELETE /v2/<name>/blobs/uploads/<id>`: cancels the upload and drops what it wrote.
    func cancelUpload(_ context: RegistryRequestContext, name: String, id: String) async throws -> Response {
        let session = try await session(id, name: name)
        try await blobWriter(context, holds: .known(id), continuing: session, hasher: SHA256Hasher()).cancel()
        return Response(status: .noContent)
    }

    // MARK: Helpers

    /// Reads a PATCH or PUT body into chunks, continuing the session's hash, after checking that
    /// its Content-Range starts where the upload is; the writer checks that it was as long as said.
    private func receive(_ request: Request, _ context: RegistryRequestContext, into session: UploadSession, name: String) async throws
        -> BlobWriter
    {
        let expected = try contentRange(request, session: session, name: name)
        let writer = blobWriter(context, holds: .known(session.id), continuing: session, hasher: try hasher(session))
        try await writer.write(request.body, declared: declaredLength(request, contentRange: expected))
        return writer
    }

    /// Stores identical content once: when the whole blob comes in this request and the
    /// metaserver already has its digest, the body is only hashed, never written, and the stored
    /// blob is linked into `name` once the body proves to have that digest (linking on the digest
    /// alone would hand a blob to anyone who knows its digest).
    ///
    /// The stored copy is read back and hashed first: a record that does not hold its bytes must
    /// be replaced by the pushed ones (``BlobWriter``'s commit does that), which needs them
    /// written. That read comes before the body is taken, so it is done only up to
    /// ``dedupLimit``; larger blobs are written and settled as any push.
    /// - Returns: nil when the normal path must run (not stored, too large, or the stored copy
    ///   does not verify).
    private func linkStored(_ request: Request, _ context: RegistryRequestContext, name: String, digest: Digest, session: String?) async throws
        -> Response?
    {
        // Only a body that says it is as long as the stored blob is worth the read: an empty
        // or short one must not make the cluster read back a blob for nothing.
        guard let declaredText = request.headers[.contentLength], let declared = UInt64(declaredText) else { return nil }
        guard let stored = try await meta.blob(digest, in: nil), stored.size == declared, stored.size <= Self.dedupLimit else { return nil }
        let holds = await storedBlobHolds(stored, digest: digest, client: context.client)
        guard holds == true else { return nil }
        var hasher = SHA256Hasher()
        var received: UInt64 = 0
        for try await piece in request.body {
            hasher.update(piece)
            received += UInt64(piece.readableBytes)
        }
        try declaredLength(request, contentRange: nil).check(received: received)
        let actual = hasher.finalize()
        guard actual == digest else {
            if let session { await endSession(session) }
            throw OCIError.digestInvalid("the content's digest is \(actual), not \(digest)")
        }
        if let session {
            do {
                try await meta.deleteUpload(session)
            } catch .uploadUnknown {
                throw OCIError.uploadUnknown(session)
            }
        }
        do {
            _ = try await meta.mountBlob(digest, into: name, from: nil)
        } catch .blobUnknown {
            // Collected between the check and the link: the bytes are gone with the body.
            var error = OCIError(.unavailable, "blob \(digest) was deleted while it was being pushed; push it again")
            error.headers[.retryAfter] = "1"
            throw error
        }
        return blobCreated(name: name, digest: digest)
    }

    /// Largest stored blob a whole-blob push of the same digest is linked to without writing:
    /// reading it back first must stay well within the client's idle limit.
    static let dedupLimit: UInt64 = 128 << 20

    /// The owner of what one request writes to the upload `session` (nil: a whole blob in one
    /// POST), holding its chunks in the session `holds` names.
    private func blobWriter(
        _ context: RegistryRequestContext, holds: ChunkHolder.Session, continuing session: UploadSession?, hasher: SHA256Hasher
    ) -> BlobWriter {
        let holder = ChunkHolder(meta: meta, session: holds, interval: configuration.holdInterval, deadline: configuration.holdDeadline)
        return BlobWriter(io: io, meta: meta, chunker: upload(context), holder: holder, continuing: session, hasher: hasher, logger: logger)
    }

    /// Has `writer` record the blob, a stored record of the digest read back first if there is one.
    private func commit(_ writer: BlobWriter, name: String, digest: Digest, client: String) async throws -> Response {
        try await writer.commit(digest: digest, repository: name) { stored in
            await storedBlobHolds(stored, digest: digest, client: client)
        }
        return blobCreated(name: name, digest: digest)
    }

    /// Ends a session whose finish failed before anything was written.
    private func endSession(_ id: String) async {
        try? await meta.deleteUpload(id)
    }

    private func session(_ id: String, name: String) async throws -> UploadSession {
        guard let session = try await meta.upload(id), session.repository == name else { throw OCIError.uploadUnknown(id) }
        return session
    }

    private func hasher(_ session: UploadSession) throws -> SHA256Hasher {
        guard let hasher = SHA256Hasher(savedState: session.hashState) else {
            throw OCIError(.blobUploadInvalid, "upload \(session.id) has a damaged hash state", status: .uploadStateDamaged)
        }
        return hasher
    }

    /// Blob digests must be SHA-256: that is what uploads are hashed with.
    private func uploadDigest(_ text: String?) throws -> Digest {
        let digest = try digest(text)
        guard digest.algorithm == .sha256 else { throw OCIError.digestInvalid("blob uploads must use sha256 digests") }
        return digest
    }

    /// The byte count a Content-Range `a-b` promises, after checking it starts where the upload is.
    private func contentRange(_ request: Request, session: UploadSession, name: String) throws -> UInt64? {
        guard let header = request.headers[.contentRange] else { return nil }
        guard let range = UploadContentRange(parsing: header) else {
            throw OCIError(.blobUploadInvalid, "Content-Range must be <start>-<end>, got '\(header.prefix(100))'")
        }
        guard range.start == session.offset else { throw outOfOrder(name: name, id: session.id, offset: session.offset) }
        guard let length = range.length else {
            throw OCIError(.blobUploadInvalid, "Content-Range \(range.start)-\(range.end) covers more bytes than a blob can hold")
        }
        return length
    }

    /// What the request says its body holds: `contentRange` bytes (already parsed) and its Content-Length.
    private func declaredLength(_ request: Request, contentRange: UInt64?) -> DeclaredLength {
        DeclaredLength(contentRange: contentRange, contentLength: request.headers[.contentLength].flatMap { UInt64($0) })
    }

    private func outOfOrder(name: String, id: String, offset: UInt64) -> OCIError {
        var error = OCIError(.blobUploadInvalid, "chunks must be sent in order: the upload is at byte \(offset)", status: .uploadOutOfOrder)
        error.headers[.location] = "/v2/\(name)/blobs/uploads/\(id)"
        error.headers[.range] = Self.rangeHeader(offset)
        return error
    }

    static func rangeHeader(_ offset: UInt64) -> String { offset == 0 ? "0-0" : "0-\(offset - 1)" }

    private func uploadAccepted(name: String, session: UploadSession, status: HTTPResponse.Status) -> Response {
        var headers = HTTPFields()
        headers[.location] = "/v2/\(name)/blobs/uploads/\(session.id)"
        headers[.range] = Self.rangeHeader(session.offset)
        headers[Self.uploadUUID] = session.id
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers)
    }

    func blobCreated(name: String, digest: Digest) -> Response {
        var headers = HTTPFields()
        headers[.location] = "/v2/\(name)/blobs/\(digest)"
        headers[Self.contentDigest] = digest.description
        headers[.contentLength] = "0"
        return Response(status: .created, headers: headers)
    }
}

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
            let holder = chunkHolder(.lazy { try await meta.createUpload(repository: name, client: context.client, limits: limits).id })
            do {
                let outcome = try await upload(context).consume(request.body, hasher: SHA256Hasher(), holder: holder)
                try checkLength(request, received: outcome.bytes, chunks: outcome.chunks)
                return try await commit(
                    name: name, digest: digest, size: outcome.bytes, chunks: outcome.chunks, written: outcome.chunks,
                    hasher: outcome.hasher, client: context.client, holder: holder)
            } catch {
                // A session opened for holds must not outlive its request (nor count against a cap).
                if let opened = await holder.opened { _ = await endSession(opened) }
                throw error
            }
        }
        let session = try await meta.createUpload(repository: name, client: context.client, limits: configuration.uploadLimits)
        return uploadAccepted(name: name, session: session, status: .accepted)
    }

    /// `PATCH /v2/<name>/blobs/uploads/<id>`: appends the body (optionally with Content-Range).
    func patchUpload(_ request: Request, _ context: RegistryRequestContext, name: String, id: String) async throws -> Response {
        let session = try await session(id, name: name)
        let holder = chunkHolder(.known(id))
        let outcome = try await receive(request, context, into: session, name: name, holder: holder)
        let newOffset = try end(of: session, after: outcome)
        do {
            try await holder.checkDeadline()
        } catch {
            io.discard(outcome.chunks)
            throw error
        }
        do {
            let updated = try await meta.appendUpload(
                id, expectedOffset: session.offset, chunks: outcome.chunks, newOffset: newOffset,
                hashState: outcome.hasher.savedState)
            return uploadAccepted(name: name, session: updated, status: .accepted)
        } catch {
            switch error {
            case .uploadOffsetMismatch(_, let actual):
                io.discard(outcome.chunks)
                throw outOfOrder(name: name, id: id, offset: actual)
            case .unavailable:
                // The append may have been committed before the answer was lost: keeping the
                // chunks (garbage at worst) is safe, deleting them could break a blob.
                throw error
            default:
                io.discard(outcome.chunks)
                throw error
            }
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
        let holder = chunkHolder(.known(id))
        let outcome = try await receive(request, context, into: session, name: name, holder: holder)
        let size = try end(of: session, after: outcome)
        return try await commit(
            name: name, digest: digest, size: size, chunks: session.chunks + outcome.chunks, written: outcome.chunks,
            hasher: outcome.hasher, client: context.client, holder: holder)
    }

    /// `GET /v2/<name>/blobs/uploads/<id>`: where the upload stands.
    func uploadStatus(name: String, id: String) async throws -> Response {
        uploadAccepted(name: name, session: try await session(id, name: name), status: .noContent)
    }

    /// `DELETE /v2/<name>/blobs/uploads/<id>`: cancels the upload and drops what it wrote.
    func cancelUpload(name: String, id: String) async throws -> Response {
        let session = try await session(id, name: name)
        try await meta.deleteUpload(id)
        io.discard(session.chunks)
        return Response(status: .noContent)
    }

    // MARK: Helpers

    /// Reads a PATCH or PUT body into chunks, continuing the session's hash, after checking that
    /// its Content-Range starts where the upload is and before checking that it was as long as said.
    private func receive(
        _ request: Request, _ context: RegistryRequestContext, into session: UploadSession, name: String, holder: ChunkHolder
    ) async throws -> ChunkedUpload.Outcome {
        let expected = try contentRange(request, session: session, name: name)
        let outcome = try await upload(context).consume(request.body, hasher: try hasher(session), holder: holder)
        if let expected, outcome.bytes != expected {
            io.discard(outcome.chunks)
            throw OCIError.sizeInvalid("Content-Range promised \(expected) bytes, the body had \(outcome.bytes)")
        }
        try checkLength(request, received: outcome.bytes, chunks: outcome.chunks)
        return outcome
    }

    /// Where the upload stands once `outcome` is appended (checked: a sum that overflows is refused).
    private func end(of session: UploadSession, after outcome: ChunkedUpload.Outcome) throws -> UInt64 {
        let (end, overflow) = session.offset.addingReportingOverflow(outcome.bytes)
        guard !overflow else {
            io.discard(outcome.chunks)
            throw OCIError.sizeInvalid("the upload would be larger than a blob can be")
        }
        return end
    }

    /// Stores identical content once: when the whole blob comes in this request and the
    /// metaserver already has its digest, the body is only hashed, never written, and the stored
    /// blob is linked into `name` once the body proves to have that digest (linking on the digest
    /// alone would hand a blob to anyone who knows its digest).
    ///
    /// The stored copy is read back and hashed first: a record that does not hold its bytes must
    /// be replaced by the pushed ones (`replaceIfStoredCopyLies`), which needs them
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
        try checkLength(request, received: received, chunks: [])
        let actual = hasher.finalize()
        guard actual == digest else {
            if let session { _ = await endSession(session) }
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

    /// A holder for the chunks one request writes.
    private func chunkHolder(_ session: ChunkHolder.Session) -> ChunkHolder {
        ChunkHolder(meta: meta, session: session, interval: configuration.holdInterval, deadline: configuration.holdDeadline)
    }

    /// Checks the digest and records the blob, ending the upload session (if any) in the same
    /// transaction. `chunks` are the whole blob's, `written` those this request wrote: what it
    /// drops when the session turns out to be finished by another request.
    private func commit(
        name: String, digest: Digest, size: UInt64, chunks: [ChunkRef], written: [ChunkRef], hasher: SHA256Hasher, client: String,
        holder: ChunkHolder
    ) async throws -> Response {
        let actual = hasher.finalize()
        guard actual == digest else {
            // The upload fails as a whole: its session ends and everything it wrote goes.
            let ended = await endSession(await holder.sessionId)
            io.discard(ended ? chunks : written)
            throw OCIError.digestInvalid("the content's digest is \(actual), not \(digest)")
        }
        let ours = BlobRecord(digest: digest, size: size, chunks: chunks)
        // The same digest stored before: its record stands only if its bytes really have it.
        if let replaced = try await replaceIfStoredCopyLies(ours, repository: name, client: client, holder: holder) { return replaced }
        let stored: BlobRecord
        do {
            try await holder.checkDeadline()
            if let session = await holder.sessionId {
                stored = try await meta.completeUpload(session, blob: ours, repository: name)
            } else {
                stored = try await meta.commitBlob(ours, repository: name)
            }
        } catch MetadataError.unavailable(let reason) {
            // The commit may have happened before the answer was lost: garbage at worst.
            throw MetadataError.unavailable(reason)
        } catch MetadataError.uploadUnknown(let id) {
            // Ended by another request, or committed by a metaserver whose answer was lost (the
            // call then went on to another, which found the session ended by that very commit):
            // only in the second case is our record stored, chunk for chunk.
            guard try await committedAlready(ours, repository: name) else {
                io.discard(written)
                throw MetadataError.uploadUnknown(id)
            }
            logger.notice("upload \(id) was committed by an earlier attempt whose answer was lost")
            stored = ours
        } catch {
            io.discard(written)
            throw error
        }
        if stored.chunks != ours.chunks { io.discard(ours.chunks.filter { !Set(stored.chunks).contains($0) }) }
        return blobCreated(name: name, digest: digest)
    }

    /// Whether `ours` is stored as it is, chunk for chunk: only this request's commit can have
    /// stored these chunks.
    private func committedAlready(_ ours: BlobRecord, repository: String) async throws -> Bool {
        try await meta.blob(ours.digest, in: repository)?.chunks == ours.chunks
    }

    /// When another record of the digest is stored, reads it back; if its bytes do not have the
    /// digest, replaces it with `ours` (already verified on the way in) and ends the session.
    /// Every chunk this request wrote is held in its session first, so nothing collects them
    /// during the read, however long it takes. Nil when the stored record stands or there is none.
    private func replaceIfStoredCopyLies(_ ours: BlobRecord, repository: String, client: String, holder: ChunkHolder) async throws -> Response? {
        guard let existing = try await meta.blob(ours.digest, in: nil), existing.chunks != ours.chunks else { return nil }
        try await holder.holdAll()
        guard await storedBlobHolds(existing, digest: ours.digest, client: client) == false else { return nil }
        logger.warning("the metaserver's record of \(ours.digest) does not hold its bytes; replacing it with the one just pushed and verified")
        let now = try await meta.repairBlob(ours, replacing: existing.chunks, repository: repository)
        // The blob refers to the chunks now (or another push repaired it first): the session can go.
        _ = await endSession(await holder.sessionId)
        if now.chunks != ours.chunks { io.discard(ours.chunks.filter { !Set(now.chunks).contains($0) }) }
        return blobCreated(name: repository, digest: ours.digest)
    }

    /// Ends a session after a failed finish; false when it was already gone (another request owns it).
    private func endSession(_ id: String?) async -> Bool {
        guard let id else { return true }
        do {
            try await meta.deleteUpload(id)
            return true
        } catch {
            return false
        }
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

    /// Content-Length is enforced by the HTTP layer too; this names the mismatch for the client.
    private func checkLength(_ request: Request, received: UInt64, chunks: [ChunkRef]) throws {
        if let declared = request.headers[.contentLength].flatMap({ UInt64($0) }), declared != received {
            io.discard(chunks)
            throw OCIError.sizeInvalid("Content-Length said \(declared) bytes, the body had \(received)")
        }
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

import Logging
import NIOCore
import SpeedyCore

/// The chunks one upload request writes, from its first byte to the blob (or to nothing): the
/// one place that decides which chunks are dropped when something fails (distribution's
/// `BlobWriter` is the model). Routes read the request and translate the outcome to HTTP; they
/// never delete a chunk themselves.
///
/// The writer owns each chunk from the moment it is durable until something else refers to it:
/// the upload session (``append()``), the blob (``commit(digest:repository:storedCopyHolds:)``),
/// or nothing, when a failure drops it. A metaserver answer lost on the way (the change may have
/// been made) leaves the chunks in place: garbage at worst, which `chunktool gc` collects, where
/// deleting them could break a blob. It also holds the chunks in the session while the body
/// streams (``ChunkHolder``), and ends a session it had to open for that when the request fails.
actor BlobWriter {
    private let io: ChunkIO
    private let meta: any MetadataStore
    private let chunker: ChunkedUpload
    private let holder: ChunkHolder
    private let logger: Logger
    /// The upload this request continues; nil for a whole blob in one request.
    private let session: UploadSession?
    private var hasher: SHA256Hasher
    /// This request's chunks in body order, once the body is read.
    private var chunks: [ChunkRef] = []
    /// Where the upload stands once this request's bytes are in.
    private var end: UInt64
    /// Chunks this request wrote that nothing else refers to yet: what a failure drops. Filled
    /// as each chunk becomes durable, so a body that fails half-way leaves none unaccounted for.
    private var owned: [ChunkRef] = []
    /// The session is gone (ended here): no second attempt to end it.
    private var sessionEnded = false
    /// Told of each chunk of this request's body, with its place in it, once it is durable
    /// (a pull-through fill lets its readers follow the chunks as they land).
    private let observer: (@Sendable (ChunkRef, Int) async -> Void)?

    /// A writer for one request. `session` is the upload it continues (nil: a whole blob in one
    /// POST); `hasher` has seen the upload's bytes so far.
    init(
        io: ChunkIO, meta: any MetadataStore, chunker: ChunkedUpload, holder: ChunkHolder, continuing session: UploadSession?,
        hasher: SHA256Hasher, logger: Logger, observer: (@Sendable (ChunkRef, Int) async -> Void)? = nil
    ) {
        self.observer = observer
        self.io = io
        self.meta = meta
        self.chunker = chunker
        self.holder = holder
        self.session = session
        self.hasher = hasher
        self.end = session?.offset ?? 0
        self.logger = logger
    }

    /// Reads `body` into chunks. Fails, dropping every chunk it wrote, when the body fails, is not
    /// as long as `declared` says, or would make the upload longer than a blob can be.
    func write<Body: AsyncSequence & Sendable>(_ body: Body, declared: DeclaredLength) async throws where Body.Element == ByteBuffer {
        do {
            let outcome = try await chunker.consume(body, hasher: hasher, holder: holder) { ref, index, started in
                await self.durable(ref, index: index, started: started)
            }
            chunks = outcome.chunks
            hasher = outcome.hasher
            let (end, overflow) = self.end.addingReportingOverflow(outcome.bytes)
            try declared.check(received: outcome.bytes)
            guard !overflow else { throw OCIError.sizeInvalid("the upload would be larger than a blob can be") }
            self.end = end
        } catch {
            discardOwned()
            await endOpenedSession()
            throw error
        }
    }

    /// PATCH: appends this request's chunks to the session, which must still be where it was
    /// when the request began; the session owns them from then on. Another request having
    /// appended first throws `MetadataError.uploadOffsetMismatch` (its chunks dropped).
    func append() async throws -> UploadSession {
        guard let session else { preconditionFailure("append needs an upload session") }
        do {
            try await holder.checkDeadline()
        } catch {
            discardOwned()
            throw error
        }
        do {
            let updated = try await meta.appendUpload(
                session.id, expectedOffset: session.offset, chunks: chunks, newOffset: end, hashState: hasher.savedState)
            owned = []
            return updated
        } catch .unavailable(let reason) {
            // The append may have been committed before the answer was lost: keeping the chunks
            // (garbage at worst) is safe, deleting them could break a blob.
            owned = []
            throw MetadataError.unavailable(reason)
        } catch {
            discardOwned()
            throw error
        }
    }

    /// PUT, or POST with `?digest=`: checks the whole upload's digest and records the blob,
    /// ending the session (if any) in the same transaction; the blob owns the chunks from then
    /// on. A wrong digest ends the upload as a whole (``cancel()``). `storedCopyHolds` reads back
    /// another stored record of the digest (nil: cannot now).
    func commit(digest: Digest, repository: String, storedCopyHolds: @Sendable (BlobRecord) async -> Bool?) async throws {
        do {
            let actual = hasher.finalize()
            guard actual == digest else {
                try? await cancel()
                throw OCIError.digestInvalid("the content's digest is \(actual), not \(digest)")
            }
            let ours = BlobRecord(digest: digest, size: end, chunks: (session?.chunks ?? []) + chunks)
            // The same digest stored before: its record stands only if its bytes really have it.
            if try await replaceIfStoredCopyLies(ours, repository: repository, storedCopyHolds: storedCopyHolds) { return }
            let stored = try await record(ours, repository: repository)
            owned = []
            // Another request stored the digest first: its record stands, ours is garbage.
            drop(ours.chunks, except: stored.chunks)
        } catch {
            await endOpenedSession()
            throw error
        }
    }

    /// Ends the upload as a whole (DELETE, or a finish whose digest is wrong): its session goes,
    /// and with it every chunk of the upload, earlier requests' and this one's. When the
    /// session cannot be ended (already gone: another request finished or ended it and owns its
    /// chunks), only this request's go, and the error is thrown.
    func cancel() async throws(MetadataError) {
        if !sessionEnded, let id = await holder.sessionId {
            do {
                try await meta.deleteUpload(id)
                sessionEnded = true
            } catch {
                discardOwned()
                throw error
            }
        }
        io.discard((session?.chunks ?? []) + owned)
        owned = []
    }

    /// Ends upload sessions the metaserver has expired (``UploadExpiry``): they are gone already,
    /// so nothing else refers to their chunks.
    static func discardExpired(_ sessions: [UploadSession], io: ChunkIO) {
        for session in sessions { io.discard(session.chunks) }
    }

    // MARK: Steps

    /// Notes a chunk the moment it is durable: from then on it is this writer's to hold and, if
    /// the request fails, to drop.
    private func durable(_ ref: ChunkRef, index: Int, started: ContinuousClock.Instant) async {
        owned.append(ref)
        await holder.written(ref, started: started)
        await observer?(ref, index)
    }

    /// Records `ours`, ending the session in the same transaction. Throws with this request's
    /// chunks dropped unless the metaserver may have recorded them.
    private func record(_ ours: BlobRecord, repository: String) async throws -> BlobRecord {
        do {
            try await holder.checkDeadline()
            if let id = await holder.sessionId { return try await meta.completeUpload(id, blob: ours, repository: repository) }
            return try await meta.commitBlob(ours, repository: repository)
        } catch MetadataError.unavailable(let reason) {
            // The commit may have happened before the answer was lost: garbage at worst.
            throw MetadataError.unavailable(reason)
        } catch MetadataError.uploadUnknown(let id) {
            // Ended by another request, or committed by a metaserver whose answer was lost (the
            // call then went on to another, which found the session ended by that very commit):
            // only in the second case is our record stored, chunk for chunk.
            guard try await meta.blob(ours.digest, in: repository)?.chunks == ours.chunks else {
                discardOwned()
                throw MetadataError.uploadUnknown(id)
            }
            logger.notice("upload \(id) was committed by an earlier attempt whose answer was lost")
            return ours
        } catch {
            discardOwned()
            throw error
        }
    }

    /// When another record of the digest is stored, reads it back; if its bytes do not have the
    /// digest, replaces it with `ours` (already verified on the way in) and ends the session.
    /// Every chunk this request wrote is held in its session first, so nothing collects them
    /// during the read, however long it takes. False when the stored record stands or there is none.
    private func replaceIfStoredCopyLies(
        _ ours: BlobRecord, repository: String, storedCopyHolds: @Sendable (BlobRecord) async -> Bool?
    ) async throws -> Bool {
        guard let existing = try await meta.blob(ours.digest, in: nil), existing.chunks != ours.chunks else { return false }
        try await holder.holdAll()
        guard await storedCopyHolds(existing) == false else { return false }
        logger.warning("the metaserver's record of \(ours.digest) does not hold its bytes; replacing it with the one just pushed and verified")
        let now = try await meta.repairBlob(ours, replacing: existing.chunks, repository: repository)
        owned = []
        // The blob refers to the chunks now (or another push repaired it first): the session can go.
        _ = await endSession()
        drop(ours.chunks, except: now.chunks)
        return true
    }

    /// Drops the chunks of `ours` that the stored record `kept` does not use.
    private func drop(_ ours: [ChunkRef], except kept: [ChunkRef]) {
        guard kept != ours else { return }
        let keep = Set(kept)
        io.discard(ours.filter { !keep.contains($0) })
    }

    private func discardOwned() {
        io.discard(owned)
        owned = []
    }

    /// Ends the session this writer opened itself to hold chunks, if any: it must not outlive its
    /// request (nor count against a cap).
    private func endOpenedSession() async {
        guard await holder.opened != nil else { return }
        _ = await endSession()
    }

    /// Ends the request's session, if it has one; false when it was already gone.
    private func endSession() async -> Bool {
        guard !sessionEnded, let id = await holder.sessionId else { return true }
        do {
            try await meta.deleteUpload(id)
            sessionEnded = true
            return true
        } catch {
            return false
        }
    }
}

/// How long a request said its body would be: the bytes its `Content-Range` covers and its
/// `Content-Length` (the HTTP layer enforces the latter too; this names the mismatch).
struct DeclaredLength: Sendable {
    var contentRange: UInt64?
    var contentLength: UInt64?

    /// Throws SIZE_INVALID when `received` bytes is not what was said.
    func check(received: UInt64) throws(OCIError) {
        if let contentRange, received != contentRange {
            throw OCIError.sizeInvalid("Content-Range promised \(contentRange) bytes, the body had \(received)")
        }
        if let contentLength, received != contentLength {
            throw OCIError.sizeInvalid("Content-Length said \(contentLength) bytes, the body had \(received)")
        }
    }
}

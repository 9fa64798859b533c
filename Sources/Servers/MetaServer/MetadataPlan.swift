import Foundation
import SpeedyCore

/// The metaserver's metadata logic, written once for both stores: each operation as the
/// ``MetadataStep``s its transaction runs, in order, computed from what the store read first
/// (an existing blob, a session). The stores read, run the steps in one transaction (one
/// statement, for a single write), and answer; which SQL does it is theirs.
///
/// Rules about references live here and in ``ManifestReferences/recorded(by:)``: which blobs and
/// manifests a manifest refers to, what must exist when it is stored and which error a missing
/// one raises, that storing, mounting or committing a blob moves its garbage collection fence,
/// and that a manifest's references and tags go with it.
enum MetadataPlan {
    /// The blob an operation keeps (the first chunks stand), and the steps that store it.
    typealias BlobOutcome = (blob: BlobRecord, steps: [MetadataStep])

    // MARK: Manifests and tags

    /// Stores `record`, tagged `tag`: checks the references the imageserver listed, records every
    /// reference the manifest makes, moves its blobs' fence, and points the tag at it.
    static func putManifest(_ record: ManifestRecord, tag: String?, now: Int64) -> [MetadataStep] {
        let repository = record.repository, digest = record.digest.description
        var steps: [MetadataStep] = []
        // Checked in the transaction that stores the manifest: a blob or manifest swept since the
        // imageserver looked makes the push fail instead of dangle. Only what the manifest's own
        // repository has counts: a blob linked elsewhere must be mounted first.
        if let checked = record.references {
            steps.append(.require(.linkedBlobs(checked.blobs, in: repository)))
            steps.append(.require(.storedManifests(checked.manifests, in: repository)))
        }
        let references = ManifestReferences.recorded(by: record)
        steps += [
            .write(.ensureRepository(repository, now: now)),
            .write(.storeManifest(ManifestRow(record, now: now))),
            .write(.recordReferences(repository: repository, manifest: digest, ManifestReference.rows(references))),
            .write(.touchBlobs(Array(Set(references.blobs.map(\.description))), now: now)),
        ]
        if let tag { steps.append(.write(.setTag(repository: repository, tag: tag, digest: digest, now: now))) }
        return steps
    }

    /// Deletes a manifest, its references and every tag naming it; fails when it is not stored.
    static func deleteManifest(_ digest: Digest, in repository: String) -> [MetadataStep] {
        [.write(.deleteTags(repository: repository, manifest: digest.description))]
            + removeManifest(digest.description, in: repository, orElse: .manifestUnknown(digest.description))
    }

    /// Deletes a manifest row and the references it made (the sweep's, for an untagged one).
    static func removeManifest(_ digest: String, in repository: String, orElse: MetadataError? = nil) -> [MetadataStep] {
        [
            .write(.deleteReferences(repository: repository, manifest: digest)),
            .write(.deleteManifest(repository: repository, digest: digest), orElse: orElse),
        ]
    }

    static func deleteTag(_ tag: String, in repository: String) -> [MetadataStep] {
        [.write(.deleteTag(repository: repository, tag: tag), orElse: .manifestUnknown(tag))]
    }

    // MARK: Blobs

    /// Stores `record` unless `existing` (the stored blob of its digest) is there: either way the
    /// blob counts as referenced now. Returns the blob the store keeps: the first chunks stand.
    static func storeBlob(_ record: BlobRecord, existing: BlobRecord?, now: Int64) -> BlobOutcome {
        let key = record.digest.description
        if let existing { return (existing, [.write(.touchBlobs([key], now: now))]) }
        return (record, [.write(.insertBlob(digest: key, size: record.size, now: now)), .write(.insertChunks(record))])
    }

    /// Stores `record` (``storeBlob(_:existing:now:)``) and links it into `repository`.
    static func commitBlob(_ record: BlobRecord, existing: BlobRecord?, repository: String, now: Int64) -> BlobOutcome {
        let (stored, steps) = storeBlob(record, existing: existing, now: now)
        return (stored, [.write(.ensureRepository(repository, now: now))] + steps + [.write(.link(digest: record.digest.description, repository: repository))])
    }

    /// Replaces a blob's chunks with `record`'s while they are still `stale`; someone else's
    /// replacement since the caller read them stands. Either way the blob is linked into `repository`.
    static func repairBlob(_ record: BlobRecord, replacing stale: [ChunkRef], existing: BlobRecord?, repository: String, now: Int64)
        -> BlobOutcome
    {
        guard let existing else { return commitBlob(record, existing: nil, repository: repository, now: now) }
        guard existing.chunks == stale else { return (existing, []) }
        let key = record.digest.description
        return (
            record,
            [
                .write(.resizeBlob(digest: key, size: record.size, now: now)), .write(.deleteChunks(digest: key)), .write(.insertChunks(record)),
                .write(.ensureRepository(repository, now: now)), .write(.link(digest: key, repository: repository)),
            ]
        )
    }

    /// Links `found` (the blob, when stored and, with a source repository, linked there) into
    /// `repository`, and moves its fence; fails when there is no such blob.
    static func mountBlob(_ digest: Digest, found: BlobRecord?, into repository: String, now: Int64) throws(MetadataError) -> BlobOutcome {
        guard let found else { throw .blobUnknown(digest) }
        let key = digest.description
        return (
            found,
            [.write(.ensureRepository(repository, now: now)), .write(.link(digest: key, repository: repository)), .write(.touchBlobs([key], now: now))]
        )
    }

    static func unlinkBlob(_ digest: Digest, from repository: String) -> [MetadataStep] {
        [.write(.unlink(digest: digest.description, repository: repository), orElse: .blobUnknown(digest))]
    }

    /// Deletes a blob everywhere and queues its chunks for deletion (the sweep's).
    static func removeBlob(_ blob: BlobRecord, now: Int64) -> [MetadataStep] {
        let key = blob.digest.description
        return [
            .write(.queueChunkDeletions(blob.chunks, now: now)), .write(.unlinkEverywhere(digest: key)), .write(.deleteChunks(digest: key)),
            .write(.deleteBlob(key)),
        ]
    }

    // MARK: Moving chunks

    /// Points `existing` (the stored blob, nil when there is none) at `to` wherever it names
    /// `from`, and records `from` as moved, so garbage collection keeps it for the grace period
    /// (pulls that read the old list may still read it). Nothing when the blob does not name
    /// `from` (any longer): someone moved, repaired or swept it first. A blob that names `to`
    /// already was moved by this very call, repeated after its answer was lost (`to` is a copy
    /// under a file id its mover leased): moved, so the mover keeps the copy. The fence stays: a
    /// move is no reference by a client.
    static func moveChunk(of digest: Digest, from: ChunkRef, to: ChunkRef, existing: BlobRecord?, now: Int64) -> (moved: Bool, steps: [MetadataStep]) {
        guard let existing, !existing.chunks.contains(to) else { return (existing != nil, []) }
        guard existing.chunks.contains(from) else { return (false, []) }
        let key = digest.description
        return (true, [.write(.replaceChunk(digest: key, from: from, to: to)), .write(.recordMovedChunk(from, owner: key, now: now))])
    }

    /// Queues `moved` (chunks moved past the grace that nothing names) for deletion and forgets
    /// them as moved, in the sweep's transaction.
    static func retireMovedChunks(_ moved: [ChunkRef], now: Int64) -> [MetadataStep] {
        guard !moved.isEmpty else { return [] }
        return [.write(.queueChunkDeletions(moved, now: now)), .write(.forgetMovedChunks(moved.map(\.key)))]
    }

    // MARK: Uploads

    /// Ends session `id` and releases whatever its requests held; fails when it is not open.
    static func endUpload(_ id: String) -> [MetadataStep] {
        [.write(.deleteUpload(id: id), orElse: .uploadUnknown(id)), .write(.releaseHeldChunks(nil, upload: id))]
    }

    /// Ends session `id` and commits its blob, in one transaction: a second finisher finds it gone.
    static func completeUpload(_ id: String, blob: BlobRecord, existing: BlobRecord?, repository: String, now: Int64) -> BlobOutcome {
        let (stored, steps) = commitBlob(blob, existing: existing, repository: repository, now: now)
        return (stored, endUpload(id) + steps)
    }

    /// Moves session `session` (nil: not open) from `expectedOffset` by `chunks`; appended chunks
    /// are the session's own, so holds on them are released.
    static func appendUpload(
        _ session: UploadSession?, id: String, expectedOffset: UInt64, chunks: [ChunkRef], newOffset: UInt64, hashState: [UInt8], now: Int64
    ) throws(MetadataError) -> (session: UploadSession, steps: [MetadataStep]) {
        guard var session else { throw .uploadUnknown(id) }
        guard session.offset == expectedOffset else { throw .uploadOffsetMismatch(id: id, actual: session.offset) }
        session.chunks += chunks
        session.offset = newOffset
        session.hashState = hashState
        return (session, [.write(.updateUpload(session, now: now)), .write(.releaseHeldChunks(chunks, upload: id))])
    }

    /// Marks session `id` used now and holds `chunks` for it; fails when it is not open.
    static func holdChunks(_ chunks: [ChunkRef], upload id: String, now: Int64) -> [MetadataStep] {
        [.write(.touchUpload(id: id, now: now), orElse: .uploadUnknown(id)), .write(.holdChunks(chunks, upload: id))]
    }
}

extension ManifestReferences {
    /// What storing `record` records as its references (`manifest_refs`): every descriptor its
    /// content names, foreign layers included (a client may push one anyway), and the references
    /// the imageserver listed. Only those listed had to exist; keeping more is safe, keeping too
    /// little is not.
    static func recorded(by record: ManifestRecord) -> ManifestReferences {
        var references = everyDescriptor(in: record.content)
        if let checked = record.references {
            references.blobs += checked.blobs
            references.manifests += checked.manifests
        }
        return references
    }

    private struct Descriptor: Decodable {
        var digest: String
    }

    private struct Shape: Decodable {
        var config: Descriptor?
        var layers: [Descriptor]?
        var manifests: [Descriptor]?
    }

    /// Every descriptor `content` names, foreign layers included: for manifests stored without
    /// the imageserver's list, where keeping too much is safe and keeping too little is not.
    static func everyDescriptor(in content: [UInt8]) -> ManifestReferences {
        guard let shape = try? JSONDecoder().decode(Shape.self, from: Data(content)) else {
            return ManifestReferences(blobs: [], manifests: [])
        }
        let blobs = ([shape.config].compactMap { $0 } + (shape.layers ?? [])).compactMap { Digest(parsing: $0.digest) }
        return ManifestReferences(blobs: blobs, manifests: (shape.manifests ?? []).compactMap { Digest(parsing: $0.digest) })
    }
}

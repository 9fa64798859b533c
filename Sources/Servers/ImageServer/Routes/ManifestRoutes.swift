import HTTPTypes
import Hummingbird
import NIOCore
import ServerSupport
import SpeedyCore

extension RegistryAPI {
    /// `GET|HEAD /v2/<name>/manifests/<tag or digest>`.
    /// A reference that is neither a valid tag nor a digest names no manifest: 404
    /// MANIFEST_UNKNOWN, as the reference registry answers (conformance suites and clients read a
    /// 400 as a failure). A repository a pull-through cache serves may fetch it from the upstream.
    func getManifest(_ request: Request, name: String, reference: String, head: Bool) async throws -> Response {
        guard Digest(parsing: reference) != nil || (!Digest.looksLikeDigest(reference) && OCINames.isValidTag(reference)) else {
            throw OCIError.manifestUnknown(String(reference.prefix(200)))
        }
        let found: ManifestRecord?
        if let (source, remote) = pullThrough?.source(for: name) {
            found = try await pullThroughManifest(name: name, reference: reference, source: source, remote: remote)
        } else {
            found = try await meta.manifest(reference, in: name)
        }
        guard let record = found else {
            if try await !meta.repositoryExists(name) { throw OCIError.nameUnknown(name) }
            throw OCIError.manifestUnknown(reference)
        }
        if Digest(parsing: reference) == nil { pullLog.note(reference, in: name) }
        var headers = HTTPFields()
        headers[.contentType] = record.mediaType
        headers[Self.contentDigest] = record.digest.description
        headers[.eTag] = "\"\(record.digest)\""
        headers[.contentLength] = String(record.content.count)
        return Response(status: .ok, headers: headers, body: head ? .init() : .init(byteBuffer: ByteBuffer(bytes: record.content)))
    }

    /// `PUT /v2/<name>/manifests/<tag or digest>`: validates, checks every reference exists in the
    /// repository, stores the exact bytes and moves the tag.
    func putManifest(_ request: Request, name: String, reference: String) async throws -> Response {
        try validate(reference: reference)
        let limit = configuration.maxManifestBytes
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw OCIError(.manifestInvalid, "manifest is over the \(limit)-byte limit", status: .manifestTooLarge)
        }
        let content = Array(body.readableBytesView)
        var tag: String?
        let digest: Digest
        if let requested = Digest(parsing: reference) {
            digest = Digest.of(content, algorithm: requested.algorithm)
            guard digest == requested else {
                throw OCIError.digestInvalid("the manifest's digest is \(digest), not \(requested)")
            }
        } else {
            tag = reference
            digest = Digest.of(content)
        }
        let parsed: ParsedManifest
        do {
            parsed = try ManifestParser.parse(content, contentType: request.headers[.contentType])
        } catch {
            throw OCIError.manifestInvalid(error.reason)
        }
        for blob in parsed.blobs where try await meta.blob(blob, in: name) == nil {
            throw OCIError.manifestBlobUnknown(blob: blob.description, in: name)
        }
        for manifest in parsed.manifests where try await meta.manifest(manifest.description, in: name) == nil {
            throw OCIError.manifestBlobUnknown(manifest: manifest.description, in: name)
        }
        let record = ManifestRecord(
            repository: name, digest: digest, mediaType: parsed.mediaType, content: content, subject: parsed.subject,
            artifactType: parsed.artifactType, annotations: parsed.annotations,
            references: ManifestReferences(blobs: parsed.blobs, manifests: parsed.manifests))
        do {
            try await meta.putManifest(record, tag: tag)
        } catch .blobUnknown(let gone) {
            // Swept by garbage collection since the checks above.
            throw OCIError.manifestBlobUnknown(blob: gone.description, in: name)
        } catch .manifestUnknown(let gone) {
            throw OCIError.manifestBlobUnknown(manifest: gone, in: name)
        }
        var headers = HTTPFields()
        headers[.location] = "/v2/\(name)/manifests/\(digest)"
        headers[Self.contentDigest] = digest.description
        headers[.contentLength] = "0"
        if let subject = parsed.subject { headers[Self.ociSubject] = subject.description }
        return Response(status: .created, headers: headers)
    }

    /// `DELETE /v2/<name>/manifests/<tag or digest>`: a digest deletes the manifest and its tags,
    /// a tag deletes only the tag.
    func deleteManifest(name: String, reference: String) async throws -> Response {
        try validate(reference: reference)
        do {
            if let digest = Digest(parsing: reference) {
                try await meta.deleteManifest(digest, in: name)
            } else {
                try await meta.deleteTag(reference, in: name)
            }
        } catch {
            guard case .manifestUnknown = error else { throw error }
            if try await !meta.repositoryExists(name) { throw OCIError.nameUnknown(name) }
            throw OCIError.manifestUnknown(reference)
        }
        return Response(status: .accepted, headers: [.contentLength: "0"])
    }

    private func validate(reference: String) throws(OCIError) {
        if Digest.looksLikeDigest(reference) {
            guard Digest(parsing: reference) != nil else { throw OCIError.digestInvalid("'\(reference)' is not a valid digest") }
        } else if !OCINames.isValidTag(reference) {
            throw OCIError(.manifestInvalid, "'\(reference.prefix(200))' is not a valid tag")
        }
    }
}

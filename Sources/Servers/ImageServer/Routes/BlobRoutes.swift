import HTTPTypes
import Hummingbird
import NIOCore
import ServerSupport
import SpeedyCore

extension RegistryAPI {
    /// `GET|HEAD /v2/<name>/blobs/<digest>`, with Range.
    /// A blob of a repository a pull-through cache serves comes from its upstream on a miss.
    func getBlob(_ request: Request, _ context: RegistryRequestContext, name: String, digest text: String, head: Bool) async throws -> Response {
        let digest = try digest(text)
        guard let blob = try await meta.blob(digest, in: name) else {
            if let (source, remote) = pullThrough?.source(for: name) {
                return try await pullThroughBlob(request, context, name: name, digest: digest, head: head, source: source, remote: remote)
            }
            throw OCIError.blobUnknown(digest.description)
        }
        return try await serveBlob(blob, request, context, head: head)
    }

    /// The headers of every answer about blob `digest`, but its length.
    static func blobHeaders(_ digest: Digest) -> HTTPFields {
        var headers = HTTPFields()
        headers[.contentType] = "application/octet-stream"
        headers[.acceptRanges] = "bytes"
        headers[.eTag] = "\"\(digest)\""
        headers[Self.contentDigest] = digest.description
        return headers
    }

    /// Answers a GET or HEAD of a stored blob from its chunks, with Range.
    func serveBlob(_ blob: BlobRecord, _ request: Request, _ context: RegistryRequestContext, head: Bool) async throws -> Response {
        var headers = Self.blobHeaders(blob.digest)
        if head {
            headers[.contentLength] = String(blob.size)
            return Response(status: .ok, headers: headers)
        }
        var range: ClosedRange<UInt64> = 0...(blob.size == 0 ? 0 : blob.size - 1)
        var status = HTTPResponse.Status.ok
        if let header = request.headers[.range] {
            switch ByteRangeRequest.resolve(header, length: blob.size) {
            case .whole: break
            case .partial(let part):
                range = part
                status = .partialContent
                headers[.contentRange] = "bytes \(part.lowerBound)-\(part.upperBound)/\(blob.size)"
            case .unsatisfiable:
                headers[.contentRange] = "bytes */\(blob.size)"
                return Response(status: .rangeNotSatisfiable, headers: headers)
            }
        }
        let length = blob.size == 0 ? 0 : Int(range.upperBound - range.lowerBound + 1)
        let pieces = blob.size == 0 ? [] : BlobStream.pieces(of: blob.chunks, range: range)
        let stream = stream(context)
        // The first chunk is read before answering: a busy imageserver, or a blob no member can
        // serve right now, gets a 503 with Retry-After rather than a 200 cut short.
        var first: BlobStream.Fetched?
        if let piece = pieces.first { first = try await stream.fetch(piece) }
        let handoff = BlobStream.FirstChunk(first)
        first = nil
        // The answer takes as long as the chunks take to come: measured to its last byte.
        RequestNote.current?.streamsBody = true
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: length) { writer in try await stream.write(pieces, first: handoff, to: &writer) })
    }

    /// `DELETE /v2/<name>/blobs/<digest>`: unlinks the blob from the repository.
    func deleteBlob(name: String, digest text: String) async throws -> Response {
        let digest = try digest(text)
        do {
            try await meta.unlinkBlob(digest, from: name)
        } catch {
            guard case .blobUnknown = error else { throw error }
            throw OCIError.blobUnknown(digest.description)
        }
        return Response(status: .accepted, headers: [.contentLength: "0"])
    }
}

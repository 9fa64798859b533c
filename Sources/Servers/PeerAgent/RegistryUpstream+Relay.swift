import AsyncHTTPClient
import CoreMetrics
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1

extension RegistryUpstream {
    /// The registry's response headers a client gets: all but the hop-by-hop ones (and
    /// `Content-Length`, which the response body states, unless `keepLength`: a HEAD's).
    static func fields(_ headers: HTTPHeaders, keepLength: Bool = false) -> HTTPFields {
        var fields = HTTPFields()
        for (name, value) in headers {
            let lower = name.lowercased()
            guard let field = HTTPField.Name(name) else { continue }
            if hopByHop.contains(lower), !(keepLength && lower == "content-length") { continue }
            fields.append(HTTPField(name: field, value: value))
        }
        return fields
    }

    /// The length the registry announced, if any.
    static func contentLength(_ headers: HTTPHeaders) -> UInt64? {
        headers.first(name: "Content-Length").flatMap { UInt64($0) }
    }

    /// A whole reply passed back as it came.
    func response(_ reply: Reply, head: Bool) -> Response {
        Response(
            status: HTTPResponse.Status(code: reply.status), headers: Self.fields(reply.headers, keepLength: head),
            body: head ? ResponseBody() : ResponseBody(byteBuffer: reply.body))
    }

    /// The registry's answer passed back to the client: status and headers as they are, the
    /// body streamed through as it arrives (and counted).
    func relay(_ upstream: HTTPClientResponse, head: Bool) -> Response {
        let status = HTTPResponse.Status(code: Int(upstream.status.code))
        if head || upstream.status == .noContent || upstream.status == .notModified {
            return Response(status: status, headers: Self.fields(upstream.headers, keepLength: true), body: ResponseBody())
        }
        let metrics = self.metrics
        let length = Self.contentLength(upstream.headers).flatMap { Int(exactly: $0) }
        return Response(
            status: status, headers: Self.fields(upstream.headers),
            body: ResponseBody(contentLength: length) { writer in
                for try await piece in upstream.body {
                    metrics.imageserverBytes.increment(by: Int64(piece.readableBytes))
                    try await writer.write(piece)
                    metrics.servedBytes.increment(by: Int64(piece.readableBytes))
                }
                try await writer.finish(nil)
            })
    }
}

import AsyncHTTPClient
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTP1

/// Passing the registry's answers back to clients, and checking its range answers.
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

    /// Checks the `Content-Range` of a 206 answer to `Range: bytes=<offset>-`: it must be
    /// `bytes <offset>-<end>/<total or *>` with `end` not before `offset`, and, when `total` is
    /// given and the registry states one, that total, with `end` inside it. Anything else throws
    /// ``PeerError/blobUnavailable(_:)``: bytes from another offset would be sent as the blob's.
    static func checkContentRange(_ headers: HTTPHeaders, from offset: UInt64, total: UInt64?) throws(PeerError) {
        guard let value = headers.first(name: "Content-Range") else {
            throw .blobUnavailable("the registry's 206 for bytes \(offset)- has no Content-Range")
        }
        guard let range = parseContentRange(value) else {
            throw .blobUnavailable("the registry's 206 for bytes \(offset)- has a malformed Content-Range: \(value)")
        }
        guard range.first == offset, range.last >= range.first else {
            throw .blobUnavailable("the registry answered bytes \(offset)- with Content-Range \(value)")
        }
        if let total, let stated = range.total, stated != total || range.last >= stated {
            throw .blobUnavailable("the registry answered bytes \(offset)- of a \(total)-byte blob with Content-Range \(value)")
        }
    }

    /// The parts of `bytes <first>-<last>/<total>` (`total` nil for `*`); nil when malformed or
    /// a number does not fit 64 bits.
    static func parseContentRange(_ value: String) -> (first: UInt64, last: UInt64, total: UInt64?)? {
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.hasPrefix("bytes ") else { return nil }
        let parts = trimmed.dropFirst("bytes ".count).split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let bounds = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = number(bounds[0]), let last = number(bounds[1]) else { return nil }
        if parts[1] == "*" { return (first, last, nil) }
        guard let total = number(parts[1]) else { return nil }
        return (first, last, total)
    }

    /// Decimal digits only (no sign, no spaces), fitting 64 bits.
    private static func number(_ text: Substring) -> UInt64? {
        guard !text.isEmpty, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { return nil }
        return UInt64(text)
    }
}

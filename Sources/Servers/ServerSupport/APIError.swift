import Hummingbird
import NIOCore
import SpeedyCore

/// An error answer from a Speedy internal API: a status and an ``SpeedyCore/ErrorBody`` in JSON.
///
/// Handlers throw it; Hummingbird turns it into the response, and the server keeps serving.
public struct APIError: HTTPResponseError, Sendable {
    /// HTTP status.
    public let status: HTTPResponse.Status
    /// Stable code for scripts, e.g. `CHUNK_UNKNOWN`.
    public let code: String
    /// A sentence for people.
    public let message: String

    /// Creates an error answer with `code` and the status it is declared with.
    public init(_ code: InternalErrorCode, _ message: String) {
        self.status = HTTPResponse.Status(code: code.status)
        self.code = code.rawValue
        self.message = message
    }

    /// 400 with `BAD_REQUEST`.
    public static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = (try? WireJSON.encoder().encode(ErrorBody(code: code, message: message))) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Builds JSON responses with the wire encoder.
public enum JSONResponse {
    /// Encodes `value` as the response body.
    public static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, userInfo: [CodingUserInfoKey: Bool] = [:]) throws -> Response {
        let encoder = WireJSON.encoder()
        for (key, flag) in userInfo { encoder.userInfo[key] = flag }
        let body = try encoder.encode(value)
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension Request {
    /// Decodes a JSON body of at most `limit` bytes, or throws a 400 that says what is wrong.
    public func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int = 1 << 20) async throws -> T {
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch {
            throw APIError(.bodyTooLarge, "request body is over \(limit) bytes")
        }
        do {
            return try WireJSON.decoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError.badRequest("body is not a valid \(T.self): \(error)")
        }
    }

    /// An optional unsigned integer query parameter, or a 400 when it is present but not a number.
    public func queryInteger<T: FixedWidthInteger>(_ name: String, as: T.Type) throws -> T? {
        guard let text = uri.queryParameters[Substring(name)] else { return nil }
        guard let value = T(String(text)) else {
            throw APIError.badRequest("query parameter '\(name)' must be a whole number, got '\(text)'")
        }
        return value
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

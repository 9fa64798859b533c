import AsyncHTTPClient
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Why a call to another Speedy role failed.
public enum ServiceError: Error, Sendable, CustomStringConvertible {
    /// The peer could not be reached (connection refused, timeout, reset).
    case unreachable(url: String, reason: String)
    /// The peer answered with an error status; `body` is its `ErrorBody` when it sent one.
    case status(url: String, code: Int, body: ErrorBody?)
    /// The peer answered 2xx with a body that is not what the API promises.
    case badResponse(url: String, reason: String)

    public var description: String {
        switch self {
        case .unreachable(let url, let reason): "cannot reach \(url): \(reason)"
        case .status(let url, let code, let body):
            if let body { "\(url): HTTP \(code) \(body.code): \(body.message)" } else { "\(url): HTTP \(code)" }
        case .badResponse(let url, let reason): "\(url): unexpected response: \(reason)"
        }
    }

    /// The HTTP status when the peer answered with one.
    public var httpStatus: Int? {
        if case .status(_, let code, _) = self { return code }
        return nil
    }
}

/// A small JSON-over-HTTP client shared by the role clients; it owns no connections itself but
/// uses its transport's `HTTPClient` (or the one it is given).
public struct ServiceClient: Sendable {
    /// Base URL such as `http://127.0.0.1:8099`.
    public let baseURL: String
    /// The HTTP client doing the work.
    public let http: HTTPClient
    /// Per-request timeout.
    public let timeout: TimeAmount
    /// The secret and actor sent with every request (internal APIs refuse requests without the secret).
    public let transport: ClusterTransport
    /// The kind of port called: with ``ClusterTransport/boundCredentials`` the secret is then never
    /// sent, only the credential bound to that kind (``ClusterCredential``).
    public let audience: ClusterRole?

    /// Creates a client for one peer, reached through `transport` (its `http` client unless
    /// `http` names another); a bare `HOST:PORT` gets the transport's scheme.
    public init(
        baseURL: String, timeout: TimeAmount = .seconds(10), transport: ClusterTransport, http: HTTPClient? = nil, audience: ClusterRole? = nil
    ) {
        self.baseURL = transport.url(baseURL)
        self.http = http ?? transport.http
        self.timeout = timeout
        self.transport = transport
        self.audience = audience
    }

    /// Sends a request and returns status, headers and the whole body (bounded by `limit`).
    public func send(
        _ method: HTTPMethod, _ path: String, body: ByteBuffer? = nil,
        headers: [(String, String)] = [], limit: Int = 64 << 20
    ) async throws(ServiceError) -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        var request = makeRequest(method, path, headers: headers)
        if let body { request.body = .bytes(body) }
        return try await execute(request, limit: limit)
    }

    /// Sends a request whose body of `length` bytes is streamed from `body` as it is produced.
    /// If `body` ends before `length` bytes, the request fails and the peer sees a body cut short.
    public func send<Body: AsyncSequence & Sendable>(
        _ method: HTTPMethod, _ path: String, streaming body: Body, length: Int,
        headers: [(String, String)] = [], limit: Int = 64 << 20
    ) async throws(ServiceError) -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) where Body.Element == ByteBuffer {
        var request = makeRequest(method, path, headers: headers)
        request.body = .stream(body, length: .known(Int64(length)))
        return try await execute(request, limit: limit)
    }

    private func makeRequest(_ method: HTTPMethod, _ path: String, headers: [(String, String)]) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        for (name, value) in identityHeaders + headers { request.headers.add(name: name, value: value) }
        return request
    }

    /// The credential (or secret) and the actor every request carries.
    var identityHeaders: [(String, String)] {
        var headers: [(String, String)] = []
        if let secret = transport.secret {
            let bound = transport.boundCredentials ? audience : nil
            headers.append(("Authorization", bound.map { ClusterCredential.authorization(secret, for: $0) } ?? secret.authorization))
        }
        if let actor = transport.actor { headers.append((SpeedyHeader.actor, actor)) }
        return headers
    }

    private func execute(_ request: HTTPClientRequest, limit: Int) async throws(ServiceError) -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        let url = request.url
        do {
            let response = try await http.execute(request, timeout: timeout)
            // Reserve the announced length once, rather than growing (and copying) as bytes arrive.
            let announced = response.headers.first(name: "Content-Length").flatMap { Int($0) } ?? 0
            var bytes = ChunkBufferPool.allocator.buffer(capacity: min(max(announced, 0), limit))
            for try await piece in response.body {
                guard bytes.readableBytes + piece.readableBytes <= limit else {
                    throw ServiceError.badResponse(url: url, reason: "response over \(limit) bytes")
                }
                bytes.writeImmutableBuffer(piece)
            }
            return (Int(response.status.code), response.headers, bytes)
        } catch let error as ServiceError {
            throw error
        } catch {
            throw .unreachable(url: url, reason: "\(error)")
        }
    }

    /// Sends a request expecting a 2xx JSON answer and decodes it.
    public func json<Response: Decodable>(
        _ method: HTTPMethod, _ path: String, as type: Response.Type, body: (some Encodable)? = Optional<Int>.none
    ) async throws(ServiceError) -> Response {
        var payload: ByteBuffer?
        if let body {
            do {
                payload = ByteBuffer(data: try WireJSON.encoder().encode(body))
            } catch {
                throw .badResponse(url: baseURL + path, reason: "cannot encode request: \(error)")
            }
        }
        let reply = try await send(method, path, body: payload, headers: payload == nil ? [] : [("Content-Type", "application/json")])
        try Self.check(reply.status, reply.body, url: baseURL + path)
        do {
            return try WireJSON.decoder().decode(Response.self, from: reply.body)
        } catch {
            throw .badResponse(url: baseURL + path, reason: "\(error)")
        }
    }

    /// Throws `.status` unless `status` is 2xx, decoding an `ErrorBody` when there is one.
    public static func check(_ status: Int, _ body: ByteBuffer, url: String) throws(ServiceError) {
        guard !(200..<300).contains(status) else { return }
        throw .status(url: url, code: status, body: try? WireJSON.decoder().decode(ErrorBody.self, from: body))
    }
}

import AsyncHTTPClient
import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Synchronization

/// The registry the agent mirrors, over HTTP: requests forwarded with the client's own
/// credentials, answers passed back with their status, headers and streamed body, and the blob
/// chunk maps the chunk path reads (`GET /v2/<name>/_speedy/chunks/<digest>`).
struct RegistryUpstream: Sendable {
    /// What the registry said to a chunk map request.
    enum ChunkMapAnswer: Sendable {
        /// The client may pull the blob; here is where its chunks are, with their tickets.
        case map(ChunkMap)
        /// The client may not pull it, or there is no such blob: the answer to pass back.
        case refused(Reply)
        /// The registry does not serve chunk maps (an older one, or it failed): use the blob GET.
        case unsupported
    }

    /// A whole, small answer of the registry.
    struct Reply: Sendable {
        /// The HTTP status code.
        var status: Int
        /// The answer's headers, as the registry sent them.
        var headers: HTTPHeaders
        /// The whole body.
        var body: ByteBuffer
    }

    /// Until when the registry is taken not to serve chunk maps, shared by every copy of the
    /// upstream: a registry without them would otherwise cost a wasted request per blob GET.
    final class ChunkMapSupport: Sendable {
        /// How long an answer that the route is not there holds.
        let memory: Duration
        private let unsupportedUntil = Mutex<ContinuousClock.Instant?>(nil)

        /// Remembers a registry without chunk maps for `memory`.
        init(memory: Duration) { self.memory = memory }

        /// Whether the registry answered, less than ``memory`` ago, that it has no chunk maps.
        var knownUnsupported: Bool {
            unsupportedUntil.withLock { until in until.map { ContinuousClock.now < $0 } ?? false }
        }

        /// Records that the registry has no chunk maps; true when it was not known already.
        func markUnsupported() -> Bool {
            let now = ContinuousClock.now
            return unsupportedUntil.withLock { until in
                let known = until.map { now < $0 } ?? false
                until = now + memory
                return !known
            }
        }
    }

    /// Headers that belong to one connection, never forwarded either way (RFC 9110 7.6.1), and
    /// the ones the HTTP client sets itself.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "host", "content-length",
    ]

    /// The registry's base URL, without a trailing slash.
    let baseURL: String
    /// The HTTP client every request to the registry goes through.
    let http: HTTPClient
    /// How long the registry may take to answer a request's head.
    let timeout: Duration
    /// Counts the registry's body bytes.
    let metrics: PeerMetrics
    /// Where the agent logs.
    let logger: Logger
    /// Whether the registry was seen without chunk maps lately.
    let chunkMapSupport: ChunkMapSupport

    /// A client of the registry at `baseURL`, trusting `transport`'s CA for its TLS. Redirects
    /// are passed back to the client rather than followed; a body that stalls for `readIdle`
    /// fails. A registry that answers it has no chunk maps is not asked again for
    /// `unsupportedMemory`.
    init(
        baseURL: String, transport: ClusterTransport, timeout: Duration, readIdle: Duration, metrics: PeerMetrics, logger: Logger,
        unsupportedMemory: Duration = .seconds(600)
    ) {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.timeout.connect = .seconds(5)
        // A registry that refuses connections is down: say so now, not at the request's deadline.
        configuration.connectionPool.retryConnectionEstablishment = false
        // Blob GETs through the registry hold a connection for as long as they stream: room for
        // many clients of the host at once (the default 8 would queue the ninth behind them).
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        configuration.timeout.read = .milliseconds(readIdle.milliseconds)
        configuration.decompression = .disabled
        transport.applyTLS(to: &configuration)
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.timeout = timeout
        self.metrics = metrics
        self.logger = logger
        self.chunkMapSupport = ChunkMapSupport(memory: unsupportedMemory)
    }

    /// Sends `method target` (path and query as the client sent them) with the client's
    /// end-to-end headers and `extra` ones; returns once the answer's head is in.
    func send(_ method: HTTPRequest.Method, _ target: String, clientHeaders: HTTPFields, extra: [(String, String)] = []) async throws(PeerError) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: baseURL + target)
        request.method = HTTPMethod(rawValue: method.rawValue)
        for field in clientHeaders where !Self.hopByHop.contains(field.name.canonicalName) {
            request.headers.add(name: field.name.rawName, value: field.value)
        }
        for (name, value) in extra { request.headers.replaceOrAdd(name: name, value: value) }
        do {
            return try await http.execute(request, timeout: .milliseconds(timeout.milliseconds))
        } catch {
            throw .registry("\(method) \(baseURL + target): \(error)")
        }
    }

    /// Reads a whole answer of at most `limit` bytes.
    func collect(_ response: HTTPClientResponse, limit: Int = 1 << 20) async throws(PeerError) -> Reply {
        do {
            var body = try await response.body.collect(upTo: limit)
            metrics.imageserverBytes.increment(by: Int64(body.readableBytes))
            body = body.slice()
            return Reply(status: Int(response.status.code), headers: response.headers, body: body)
        } catch {
            throw .registry("reading an answer: \(error)")
        }
    }

    /// Asks the registry where blob `digest` of `name` is, with the client's credentials: the
    /// authorization check of every blob the agent serves, from the cache or not. A registry
    /// known to have no chunk maps (``ChunkMapSupport``) is not asked: `.unsupported` at once.
    func chunkMap(name: String, digest: Digest, clientHeaders: HTTPFields) async -> ChunkMapAnswer {
        if chunkMapSupport.knownUnsupported { return .unsupported }
        let target = "/v2/\(name)/_speedy/chunks/\(digest)"
        let reply: Reply
        do {
            let response = try await send(.get, target, clientHeaders: Self.credentials(clientHeaders), extra: [("Accept", "application/json")])
            reply = try await collect(response, limit: 64 << 20)
        } catch {
            // Unreachable, or cut off: a passing trouble, not the registry's kind.
            logger.warning("chunk map of \(digest): \(error); falling back to the blob GET")
            return .unsupported
        }
        switch reply.status {
        case 200:
            do {
                return .map(try WireJSON.decoder().decode(ChunkMap.self, from: reply.body))
            } catch {
                logger.warning("chunk map of \(digest) does not decode: \(error); falling back to the blob GET")
                return unsupported(reply.status)
            }
        case 401, 403:
            return .refused(reply)
        case 404 where Self.errorCode(reply.body) == "BLOB_UNKNOWN":
            return .refused(reply)
        case 404, 405, 501:
            // No such route (404 NAME_UNKNOWN or a plain 404 page): a registry without chunk maps.
            return unsupported(reply.status)
        default:
            // A registry in trouble (5xx), or a request it did not like: the blob GET decides.
            return .unsupported
        }
    }

    /// `.unsupported`, remembered for ``ChunkMapSupport/memory`` (the registry answered `status`).
    private func unsupported(_ status: Int) -> ChunkMapAnswer {
        if chunkMapSupport.markUnsupported() {
            logger.notice("the registry has no chunk maps (it answered \(status)): blobs through its blob GET for the next \(chunkMapSupport.memory)")
        }
        return .unsupported
    }

    /// Only the headers a chunk map request carries on the client's behalf.
    static func credentials(_ headers: HTTPFields) -> HTTPFields {
        var kept = HTTPFields()
        for field in headers where field.name == .authorization || field.name == .userAgent { kept.append(field) }
        return kept
    }

    /// The `code` of the first error of an OCI error body.
    static func errorCode(_ body: ByteBuffer) -> String? {
        guard let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
            let errors = json["errors"] as? [[String: Any]]
        else { return nil }
        return errors.first?["code"] as? String
    }
}

import HTTPTypes
import Hummingbird
import Logging
import CoreMetrics
import Metrics
import NIOCore
import Synchronization

/// What routes learn about a request that the telemetry middleware, outside them, reports: the
/// route's name for metrics and the user its credentials named. Reached through
/// ``RequestNote/current`` while the request runs.
public final class RequestNote: Sendable {
    private struct Fields {
        var route: String?
        var user: String?
    }

    private let fields = Mutex(Fields())

    /// The note of the request this task is serving, nil outside one.
    @TaskLocal public static var current: RequestNote?

    init() {}

    /// A low-cardinality name of what the request does (`blob`, `manifest`, `/v1/heartbeat`).
    public var route: String? {
        get { fields.withLock { $0.route } }
        set { fields.withLock { $0.route = newValue } }
    }

    /// The user the request's credentials named.
    public var user: String? {
        get { fields.withLock { $0.user } }
        set { fields.withLock { $0.user = newValue } }
    }
}

/// Counters of a role's traffic since it started, for its heartbeat to the master (which turns
/// them into rates, like a chunkserver's).
public final class RequestTally: Sendable {
    /// Requests answered.
    public let requests = Atomic<UInt64>(0)
    /// Answers with a 4xx status.
    public let clientErrors = Atomic<UInt64>(0)
    /// Answers with a 5xx status.
    public let serverErrors = Atomic<UInt64>(0)
    /// Request body bytes received.
    public let bytesIn = Atomic<UInt64>(0)
    /// Response body bytes sent.
    public let bytesOut = Atomic<UInt64>(0)
    /// Requests in progress.
    public let inFlight = Atomic<Int>(0)

    /// Zero counters.
    public init() {}
}

/// Measures every request once: Prometheus metrics by route, method and status (count, latency,
/// bytes each way), the role's ``RequestTally``, and one log line at `info` with method, path,
/// status, bytes, duration, client address and user. Outermost, so refusals are counted too.
public struct RequestTelemetryMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let logger: Logger
    let tally: RequestTally
    let cache = RouteMetricsCache()

    /// Reports to `logger` and `tally`.
    public init(logger: Logger, tally: RequestTally = RequestTally()) {
        RoleMetrics.bootstrap()
        self.logger = logger
        self.tally = tally
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let note = RequestNote()
        let received = ByteTally()
        var request = request
        if request.method == .put || request.method == .post || request.method == .patch {
            let tally = self.tally
            request.body = RequestBody(
                asyncSequence: request.body.map { buffer in
                    received.add(buffer.readableBytes)
                    tally.bytesIn.add(UInt64(buffer.readableBytes), ordering: .relaxed)
                    return buffer
                })
        }
        tally.inFlight.add(1, ordering: .relaxed)
        let finish = Finish(
            middleware: self, method: request.method, path: request.uri.path, client: context.clientAddress,
            endpoint: context.endpointPath, note: note, started: started, received: received)
        let response: Response
        do {
            response = try await RequestNote.$current.withValue(note) { try await next(request, context) }
        } catch {
            let status = (error as? any HTTPResponseError)?.status ?? .internalServerError
            finish.record(status: status, sent: 0)
            throw error
        }
        // Counted as written, and recorded once the last byte is out (or the client went away).
        let body = response.body
        let status = response.status
        var counted = response
        counted.body = ResponseBody(contentLength: body.contentLength) { writer in
            let sent = ByteTally()
            let tally = self.tally
            do {
                try await body.write(
                    writer.map { buffer in
                        sent.add(buffer.readableBytes)
                        tally.bytesOut.add(UInt64(buffer.readableBytes), ordering: .relaxed)
                        return buffer
                    })
            } catch {
                finish.record(status: status, sent: sent.bytes, failed: true)
                throw error
            }
            finish.record(status: status, sent: sent.bytes)
        }
        return counted
    }

    /// Everything known when the request came in, to record when it is over.
    struct Finish: Sendable {
        let middleware: RequestTelemetryMiddleware
        let method: HTTPRequest.Method
        let path: String
        let client: String
        let endpoint: String?
        let note: RequestNote
        let started: ContinuousClock.Instant
        let received: ByteTally

        func record(status: HTTPResponse.Status, sent: Int, failed: Bool = false) {
            let elapsed = ContinuousClock.now - started
            let tally = middleware.tally
            tally.inFlight.subtract(1, ordering: .relaxed)
            tally.requests.add(1, ordering: .relaxed)
            if (400..<500).contains(status.code) { tally.clientErrors.add(1, ordering: .relaxed) }
            if status.code >= 500 { tally.serverErrors.add(1, ordering: .relaxed) }
            let route = note.route ?? endpoint ?? "unmatched"
            let bytesIn = received.bytes
            let metrics = middleware.cache.metrics(route: route, method: method, status: status.code)
            metrics.requests.increment()
            metrics.duration.recordNanoseconds(Int64(elapsed.components.seconds) * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            if bytesIn > 0 { metrics.bytesIn.increment(by: bytesIn) }
            if sent > 0 { metrics.bytesOut.increment(by: sent) }
            // Health probes and scrapes come every few seconds: logging them would drown the rest.
            let quiet = RequestTelemetry.quietPaths.contains(path) && status.code < 400
            middleware.logger.log(
                level: quiet ? .debug : .info, "\(method) \(path) \(status.code)",
                metadata: [
                    "method": "\(method)", "path": "\(path)", "status": "\(status.code)", "bytes_in": "\(bytesIn)",
                    "bytes_out": "\(sent)", "duration_ms": "\(ByteSizeFormat.milliseconds(elapsed))", "client": "\(client)",
                    "user": "\(note.user ?? "-")", "aborted": "\(failed)",
                ])
        }
    }
}

/// Settings of the request telemetry shared by every role.
public enum RequestTelemetry {
    /// Paths logged at `debug` when they succeed (probes and scrapes), so `info` shows traffic.
    public static let quietPaths: Set<String> = ["/healthz", "/readyz", "/metrics", "/v1/health", "/health", "/v1/heartbeat", "/v1/roles/heartbeat", "/v1/cluster"]
}

/// Bytes counted by one request's body as it streams.
final class ByteTally: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ bytes: Int) { count.add(bytes, ordering: .relaxed) }
    var bytes: Int { count.load(ordering: .relaxed) }
}

enum ByteSizeFormat {
    /// Milliseconds with one decimal.
    static func milliseconds(_ duration: Duration) -> String {
        let micro = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        return "\(micro / 1000).\(micro % 1000 / 100)"
    }
}

/// The metric handles of each route, method and status, made once (the factory's own lookup
/// takes a lock and builds label strings on every call).
final class RouteMetricsCache: Sendable {
    struct Key: Hashable {
        var route: String
        var method: HTTPRequest.Method
        var status: Int
    }

    struct Handles: Sendable {
        let requests: Counter
        let duration: Metrics.Timer
        let bytesIn: Counter
        let bytesOut: Counter
    }

    private let handles = Mutex<[Key: Handles]>([:])

    func metrics(route: String, method: HTTPRequest.Method, status: Int) -> Handles {
        let key = Key(route: route, method: method, status: status)
        return handles.withLock { handles in
            if let made = handles[key] { return made }
            let labels = [("route", route), ("method", method.rawValue), ("status", String(status))]
            let made = Handles(
                requests: Counter(label: "speedy_http_requests_total", dimensions: labels),
                duration: Metrics.Timer(label: "speedy_http_request_duration_seconds", dimensions: labels),
                bytesIn: Counter(label: "speedy_http_request_bytes_total", dimensions: [("route", route), ("method", method.rawValue)]),
                bytesOut: Counter(label: "speedy_http_response_bytes_total", dimensions: [("route", route), ("method", method.rawValue)]))
            handles[key] = made
            return made
        }
    }
}

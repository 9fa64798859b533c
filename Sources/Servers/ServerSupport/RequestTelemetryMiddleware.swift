import HTTPTypes
import Hummingbird
import Logging
import CoreMetrics
import Metrics
import NIOCore
import Synchronization

/// What inner middleware learns about a request that the telemetry middleware, outside it,
/// reports: the user its credentials named. Reached through ``RequestNote/current`` while the
/// request runs.
public final class RequestNote: Sendable {
    private let name = Mutex<String?>(nil)
    private let streams = Atomic<Bool>(false)

    /// The note of the request this task is serving, nil outside one.
    @TaskLocal public static var current: RequestNote?

    init() {}

    /// Whether the answer's body is produced while it is sent (a blob streamed from chunkservers):
    /// then the request is measured to its last byte. Other answers with a length are measured
    /// when the handler returns, which keeps Hummingbird's single write of head and body.
    public var streamsBody: Bool {
        get { streams.load(ordering: .relaxed) }
        set { streams.store(newValue, ordering: .relaxed) }
    }

    /// The user the request's credentials named.
    public var user: String? {
        get { name.withLock { $0 } }
        set { name.withLock { $0 = newValue } }
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

    /// Zero counters.
    public init() {}
}

/// Measures every request once: Prometheus metrics by route, method and status (count, latency,
/// bytes each way), the role's ``RequestTally``, and one log line at `info` with method, path,
/// status, bytes, duration, client address and user. Outermost, so refusals are counted too.
public struct RequestTelemetryMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let logger: Logger
    let tally: RequestTally
    let routeName: @Sendable (Request) -> String?
    let cache = RouteMetricsCache()

    /// Reports to `logger` and `tally`. `route` names a request's route for metrics when the
    /// router's own pattern does not say enough (the registry's `/v2/**`); it must give a small,
    /// fixed set of names, never the path itself.
    public init(logger: Logger, tally: RequestTally = RequestTally(), route: @escaping @Sendable (Request) -> String? = { _ in nil }) {
        RoleMetrics.bootstrap()
        self.logger = logger
        self.tally = tally
        self.routeName = route
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let note = RequestNote()
        let finish = RequestRecord(
            middleware: self, method: request.method, path: request.uri.path, client: context.clientAddress,
            route: routeName(request) ?? context.endpointPath ?? "unmatched", note: note)
        var request = request
        if request.method == .put || request.method == .post || request.method == .patch {
            let tally = self.tally
            request.body = RequestBody(
                asyncSequence: request.body.map { buffer in
                    finish.received.add(buffer.readableBytes)
                    tally.bytesIn.add(UInt64(buffer.readableBytes), ordering: .relaxed)
                    return buffer
                })
        }
        let response: Response
        do {
            response = try await RequestNote.$current.withValue(note) { try await next(request, context) }
        } catch {
            finish.record(status: (error as? any HTTPResponseError)?.status ?? .internalServerError, sent: 0)
            throw error
        }
        let body = response.body
        let status = response.status
        if let length = body.contentLength, !note.streamsBody {
            tally.bytesOut.add(UInt64(length), ordering: .relaxed)
            finish.record(status: status, sent: length)
            return response
        }
        // Counted as written, and recorded once the last byte is out or the write failed; a body
        // never written (the client left before the head went out) is recorded when dropped.
        var counted = response
        counted.body = ResponseBody(contentLength: body.contentLength) { writer in
            let counting = CountingWriter(base: writer, record: finish, tally: self.tally)
            do {
                try await body.write(counting)
            } catch {
                finish.record(status: status, sent: finish.sent.bytes, failed: true)
                throw error
            }
            finish.record(status: status, sent: finish.sent.bytes)
        }
        finish.pendingStatus = status
        return counted
    }
}

/// A response body writer that counts what passes through, keeping batched writes batched.
struct CountingWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let record: RequestRecord
    let tally: RequestTally

    init(base: any ResponseBodyWriter, record: RequestRecord, tally: RequestTally) {
        self.base = base
        self.record = record
        self.tally = tally
    }

    mutating func write(_ buffer: ByteBuffer) async throws {
        count(buffer.readableBytes)
        try await base.write(buffer)
    }

    mutating func write(contentsOf buffers: some Sequence<ByteBuffer>) async throws {
        count(buffers.reduce(0) { $0 + $1.readableBytes })
        try await base.write(contentsOf: buffers)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        try await base.finish(trailingHeaders)
    }

    private func count(_ bytes: Int) {
        record.sent.add(bytes)
        tally.bytesOut.add(UInt64(bytes), ordering: .relaxed)
    }
}

/// One request, from its arrival to its record: what is known when it comes in, the bytes each
/// way, and whether it has been recorded (exactly once, by whichever end comes first).
final class RequestRecord: Sendable {
    private let tally: RequestTally
    private let cache: RouteMetricsCache
    private let logger: Logger
    let method: HTTPRequest.Method
    let path: String
    let client: String
    let route: String
    let note: RequestNote
    let started = ContinuousClock.now
    let received = ByteTally()
    let sent = ByteTally()
    private let recorded = Atomic<Bool>(false)
    private let pending = Mutex<HTTPResponse.Status?>(nil)

    init<Context>(middleware: RequestTelemetryMiddleware<Context>, method: HTTPRequest.Method, path: String, client: String, route: String, note: RequestNote) {
        tally = middleware.tally
        cache = middleware.cache
        logger = middleware.logger
        self.method = method
        self.path = String(String.UnicodeScalarView(path.unicodeScalars.lazy.filter { (0x21..<0x7f).contains($0.value) }.prefix(300)))
        self.client = client
        self.route = route
        self.note = note
    }

    /// The status of an answer whose body is still to be written.
    var pendingStatus: HTTPResponse.Status? {
        get { pending.withLock { $0 } }
        set { pending.withLock { $0 = newValue } }
    }

    deinit {
        // The body was never written: the connection went before the answer's head did.
        if let status = pendingStatus { record(status: status, sent: sent.bytes, failed: true) }
    }

    func record(status: HTTPResponse.Status, sent: Int, failed: Bool = false) {
        guard recorded.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        let elapsed = ContinuousClock.now - started
        tally.requests.add(1, ordering: .relaxed)
        if (400..<500).contains(status.code) { tally.clientErrors.add(1, ordering: .relaxed) }
        if status.code >= 500 { tally.serverErrors.add(1, ordering: .relaxed) }
        let bytesIn = received.bytes
        let metrics = cache.metrics(route: route, method: method, status: status.code)
        metrics.requests.increment()
        metrics.duration.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        if bytesIn > 0 { metrics.bytesIn.increment(by: bytesIn) }
        if sent > 0 { metrics.bytesOut.increment(by: sent) }
        // Health probes and scrapes come every few seconds: logging them would drown the rest.
        let quiet = RequestTelemetry.quietPaths.contains(path) && status.code < 400
        logger.log(
            level: quiet ? .debug : .info, "\(method) \(path) \(status.code)",
            metadata: [
                "method": "\(method)", "path": "\(path)", "status": "\(status.code)", "bytes_in": "\(bytesIn)",
                "bytes_out": "\(sent)", "duration_ms": "\(ByteSizeFormat.milliseconds(elapsed))", "client": "\(client)",
                "user": "\(note.user ?? "-")", "aborted": "\(failed)",
            ])
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

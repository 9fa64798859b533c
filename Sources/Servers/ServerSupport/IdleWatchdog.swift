import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// A request context that knows its connection, so a stalled request can be cut off.
public protocol ChannelRequestContext: RemoteAddressRequestContext {
    /// The connection the request came on.
    var channel: any Channel { get }
}

/// How much a request has waited on its client since it last made progress, as seen by its body
/// reader and its response writer.
///
/// A request is *waiting on its client* while it reads a body piece that has not arrived or
/// writes a piece the client does not take; only that waiting counts, so a request slow on
/// Speedy's side (a metadata call, a chunk read) is never mistaken for a stalled client.
/// *Progress* is ``progressBytes`` moved (or the body's end): a client that drips a byte now and
/// then to keep a buffer is as idle as one that sends nothing.
public final class ProgressMark: Sendable {
    private struct State {
        /// Waiting time since the last progress, not counting the wait in course.
        var waited: Duration = .zero
        /// When the wait in course began.
        var waitingSince: ContinuousClock.Instant?
        /// Bytes moved since the last progress.
        var bytes = 0
        var expired = false
    }

    /// Bytes that count as progress.
    public static let progressBytes = 16 << 10

    private let state = Mutex(State())

    /// Creates a mark for one request.
    public init() {}

    /// The request starts waiting for its client.
    public func beginWait() { state.withLock { $0.waitingSince = .now } }

    /// The client delivered (or took) `bytes`; `finished` when the body or response is complete.
    public func endWait(bytes: Int, finished: Bool = false) {
        state.withLock {
            if let since = $0.waitingSince { $0.waited += .now - since }
            $0.waitingSince = nil
            $0.bytes += bytes
            if finished || $0.bytes >= Self.progressBytes {
                $0.bytes = 0
                $0.waited = .zero
            }
        }
    }

    /// Whether the watchdog cut the request off.
    public var expired: Bool { state.withLock { $0.expired } }

    /// Marks the request expired if it has waited on its client for `limit` or longer without
    /// progress.
    func expire(ifWaitingLongerThan limit: Duration, now: ContinuousClock.Instant) -> Bool {
        state.withLock {
            guard !$0.expired, let since = $0.waitingSince, $0.waited + (now - since) >= limit else { return false }
            $0.expired = true
            return true
        }
    }
}

/// A request body or response cut off because its client stopped sending or reading.
public struct ClientIdleTimeout: Error, Sendable, CustomStringConvertible {
    /// How long the client was silent.
    public let limit: Duration
    public var description: String { "the client sent or took next to nothing (under 16 KiB) in \(limit)" }
}

/// Closes the connection of any request whose client has sent (or taken) less than
/// ``ProgressMark/progressBytes`` in `limit` of waiting on it: a body that stops arriving (or
/// drips), or a download nobody reads, must not hold a buffer forever.
/// One loop watches every request of the server, at a quarter of the limit.
public final class IdleWatchdog: Service, Sendable {
    private struct Entry {
        var mark: ProgressMark
        var channel: any Channel
        var what: String
    }

    /// How long a client may be silent mid-request.
    public let limit: Duration
    private let logger: Logger
    private let entries = Mutex<[ObjectIdentifier: Entry]>([:])

    /// Creates a watchdog; add it to the role's services so its loop runs.
    public init(limit: Duration, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    /// Starts watching a request (`what` names it in the log line if it is cut off).
    public func watch(_ mark: ProgressMark, channel: any Channel, what: String) {
        entries.withLock { $0[ObjectIdentifier(mark)] = Entry(mark: mark, channel: channel, what: what) }
    }

    /// Stops watching a request.
    public func unwatch(_ mark: ProgressMark) {
        _ = entries.withLock { $0.removeValue(forKey: ObjectIdentifier(mark)) }
    }

    /// One pass: cut off the stalled, forget the closed.
    func sweep(now: ContinuousClock.Instant = .now) {
        let stalled = entries.withLock { entries -> [Entry] in
            var stalled: [Entry] = []
            for (key, entry) in entries {
                if entry.mark.expire(ifWaitingLongerThan: limit, now: now) {
                    stalled.append(entry)
                    entries[key] = nil
                } else if !entry.channel.isActive {
                    entries[key] = nil
                }
            }
            return stalled
        }
        for entry in stalled {
            logger.warning("closing the connection of \(entry.what): the client sent or took next to nothing (under 16 KiB) in \(limit)")
            entry.channel.close(promise: nil)
        }
    }

    public func run() async throws {
        let interval = max(limit / 4, .milliseconds(50))
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            sweep()
        }
    }
}

/// Puts every request under an ``IdleWatchdog``: its body is read, and its response written,
/// through wrappers that mark when the request waits on its client.
public struct IdleWatchdogMiddleware<Context: ChannelRequestContext>: RouterMiddleware {
    let watchdog: IdleWatchdog

    /// Responses this small are not watched.
    static var smallResponse: Int { 64 << 10 }

    /// Watches requests with `watchdog`.
    public init(watchdog: IdleWatchdog) { self.watchdog = watchdog }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let mark = ProgressMark()
        watchdog.watch(mark, channel: context.channel, what: "\(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress)")
        var request = request
        request.body = RequestBody(asyncSequence: WatchedRequestBody(base: request.body, mark: mark, limit: watchdog.limit))
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            watchdog.unwatch(mark)
            throw error
        }
        let body = response.body
        // A small answer goes out in one write that the socket buffers take whole: nothing to
        // watch, and left as it is Hummingbird writes head and body together.
        if let length = body.contentLength, length <= Self.smallResponse {
            watchdog.unwatch(mark)
            return response
        }
        let watchdog = self.watchdog
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer { watchdog.unwatch(mark) }
            try await body.write(WatchedResponseBodyWriter(base: writer, mark: mark))
        }
        return response
    }
}

/// A request body whose reads are marked; a body that ends because the watchdog closed the
/// connection throws instead of looking complete.
struct WatchedRequestBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let base: RequestBody
    let mark: ProgressMark
    let limit: Duration

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: RequestBody.AsyncIterator
        let mark: ProgressMark
        let limit: Duration

        mutating func next() async throws -> ByteBuffer? {
            mark.beginWait()
            var piece: ByteBuffer?
            do {
                piece = try await base.next()
            } catch {
                mark.endWait(bytes: 0)
                throw error
            }
            mark.endWait(bytes: piece?.readableBytes ?? 0, finished: piece == nil)
            if mark.expired { throw ClientIdleTimeout(limit: limit) }
            return piece
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), mark: mark, limit: limit) }
}

/// A response writer whose writes are marked.
struct WatchedResponseBodyWriter: ResponseBodyWriter {
    var base: any ResponseBodyWriter
    let mark: ProgressMark

    /// Pieces written at once: a big buffer goes out in slices, so a slow but steady reader
    /// shows progress between them rather than one long silence.
    static let slice = 256 << 10

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        while buffer.readableBytes > 0 {
            let piece = buffer.readSlice(length: min(buffer.readableBytes, Self.slice))!
            mark.beginWait()
            defer { mark.endWait(bytes: piece.readableBytes) }
            try await base.write(piece)
        }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {
        mark.beginWait()
        defer { mark.endWait(bytes: 0, finished: true) }
        try await base.finish(trailingHeaders)
    }
}

import NIOCore
import NIOHTTP1
import NIOPosix
import SpeedyCore
import Synchronization

/// Whole-chunk reads from chunkservers over plain HTTP/1.1, below the async layers.
///
/// A response's bytes are checksummed and copied into the chunk's one buffer on the event loop
/// as each socket read brings them, while they are still in the CPU's cache, and the caller is
/// resumed once per chunk. `HTTPClient` hands a body over as an async sequence of 64 KiB
/// pieces, a task resumption each, after which the CRC read the gathered chunk from memory once
/// more: on a pull that was most of what the imageserver spent per byte beyond its two copies
/// (docs/performance.md, issue 24). TLS ports are still read through `HTTPClient`.
///
/// Connections are kept per member and reused. One goes back to the pool only after a whole
/// response that allows it, so a request never meets the leftovers of another; any failure
/// closes it.
public final class ChunkReadClient: Sendable {
    /// Limits of a read.
    public struct Options: Sendable {
        /// How long a connection may take to open.
        public var connectTimeout: TimeAmount = .seconds(3)
        /// A member silent this long fails the read: a cut link hangs rather than resets, and
        /// the caller should move on to another member.
        public var silenceLimit: TimeAmount
        /// Idle connections kept per member.
        public var idlePerMember = 16
        /// The most an error answer's body may hold.
        public var errorBodyLimit = 64 << 10

        /// The defaults: 3 s to connect, 5 s of silence (unless given), 16 idle connections per member.
        public init(silenceLimit: TimeAmount = .seconds(5)) {
            self.silenceLimit = silenceLimit
        }
    }

    private let group: any EventLoopGroup
    private let options: Options
    private let idle = Mutex<[String: [any Channel]]>([:])

    /// Creates a client on `group`'s event loops.
    public init(options: Options = Options(), group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.options = options
        self.group = group
    }

    /// Sends `GET path` to `address` (`HOST:PORT` or `http://HOST:PORT`) with `headers` and
    /// returns the answer, its body bounded by `limit` (2xx) or the error-body limit, and the
    /// CRC-32C of that body. `timeout` bounds the whole read, connecting included.
    ///
    /// A connection taken from the pool that turns out to have been closed by the member while
    /// idle is replaced by a fresh one once, before anything of the answer arrived.
    public func get(
        _ path: String, from address: String, headers: [(String, String)], limit: Int, timeout: TimeAmount
    ) async throws(ServiceError) -> ChunkReadResponse {
        let url = "http://\(Self.hostPort(address))\(path)"
        guard let (host, port) = Self.split(Self.hostPort(address)) else {
            throw .unreachable(url: url, reason: "'\(address)' is not HOST:PORT")
        }
        let deadline = NIODeadline.now() + timeout
        let request = ChunkReadRequest.head(path, host: Self.hostPort(address), headers: headers)
        var retried = false
        while true {
            let (channel, pooled) = try await connection(host: host, port: port, url: url, deadline: deadline)
            do {
                let response = try await exchange(request, on: channel, limit: limit, deadline: deadline)
                if response.keepAlive { release(channel, key: "\(host):\(port)") } else { channel.close(promise: nil) }
                return response
            } catch ChunkReadFailure.closedBeforeAnswer where pooled && !retried && !Task.isCancelled {
                channel.close(promise: nil)
                retried = true
            } catch {
                channel.close(promise: nil)
                throw error.serviceError(url: url)
            }
        }
    }

    /// Closes every idle connection (the client stays usable).
    public func closeIdle() {
        let channels = idle.withLock { pool in
            defer { pool = [:] }
            return pool.values.flatMap { $0 }
        }
        for channel in channels { channel.close(promise: nil) }
    }

    private func exchange(
        _ head: HTTPRequestHead, on channel: any Channel, limit: Int, deadline: NIODeadline
    ) async throws(ChunkReadFailure) -> ChunkReadResponse {
        let promise = channel.eventLoop.makePromise(of: ChunkReadResponse.self)
        let request = ChunkReadRequest(
            head: head, limit: limit, errorBodyLimit: options.errorBodyLimit, silenceLimit: options.silenceLimit,
            deadline: deadline, promise: promise)
        // A connection closed before the read reached its handler fails here, not by the handler.
        channel.writeAndFlush(request).whenFailure { error in
            promise.fail(channel.isActive ? ChunkReadFailure.connection("\(error)") : ChunkReadFailure.closedBeforeAnswer)
        }
        do {
            // A caller that gives up (its client left) closes the connection, which ends the read.
            return try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: {
                channel.close(promise: nil)
            }
        } catch let failure as ChunkReadFailure {
            throw failure
        } catch {
            throw .connection("\(error)")
        }
    }

    /// An idle pooled connection to `host:port` that is still open, or a new one.
    private func connection(host: String, port: Int, url: String, deadline: NIODeadline) async throws(ServiceError) -> (any Channel, pooled: Bool) {
        let key = "\(host):\(port)"
        while let channel = idle.withLock({ $0[key]?.popLast() }) {
            if channel.isActive { return (channel, true) }
        }
        let left = deadline - .now()
        guard left > .zero, !Task.isCancelled else { throw .unreachable(url: url, reason: "no whole answer within the read's deadline") }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(min(options.connectTimeout, left))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            // Reads of up to 1 MiB from the pooled buffers: fewer wake-ups per chunk, and the
            // pages are already mapped.
            .channelOption(.allocator, value: ChunkBufferPool.allocator)
            .channelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64 << 10, initial: 256 << 10, maximum: 1 << 20))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(leftOverBytesStrategy: .fireError)
                    try channel.pipeline.syncOperations.addHandler(ChunkReadHandler())
                }
            }
        do {
            return (try await bootstrap.connect(host: host, port: port).get(), false)
        } catch {
            throw .unreachable(url: url, reason: "\(error)")
        }
    }

    private func release(_ channel: any Channel, key: String) {
        let kept = idle.withLock { pool in
            guard channel.isActive, pool[key, default: []].count < options.idlePerMember else { return false }
            pool[key, default: []].append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    static func hostPort(_ address: String) -> String {
        var text = Substring(address)
        if text.hasPrefix("http://") { text = text.dropFirst("http://".count) }
        while text.hasSuffix("/") { text = text.dropLast() }
        return String(text)
    }

    /// `HOST:PORT` (or `[V6]:PORT`) as host and port.
    static func split(_ hostPort: String) -> (String, Int)? {
        guard let colon = hostPort.lastIndex(of: ":"), let port = Int(hostPort[hostPort.index(after: colon)...]),
            (1...65535).contains(port)
        else { return nil }
        var host = hostPort[..<colon]
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty else { return nil }
        return (String(host), port)
    }
}

/// What a chunkserver answered to a ``ChunkReadClient`` read.
public struct ChunkReadResponse: Sendable {
    /// The HTTP status.
    public let status: Int
    /// The answer's headers.
    public let headers: HTTPHeaders
    /// The whole body.
    public let body: ByteBuffer
    /// The CRC-32C of `body`, computed as it arrived.
    public let crc: UInt32
    /// Whether the connection may carry another request.
    let keepAlive: Bool
}

/// Why a read on one connection failed, before it becomes a ``ServiceError``.
enum ChunkReadFailure: Error {
    /// The connection closed before any of the answer arrived (an idle one the member closed).
    case closedBeforeAnswer
    /// The connection failed or closed part way.
    case connection(String)
    /// The member said nothing for the silence limit, or the read ran past its deadline.
    case timedOut(String)
    /// The answer was not one the protocol allows (too long, cut short, malformed).
    case badResponse(String)

    func serviceError(url: String) -> ServiceError {
        switch self {
        case .closedBeforeAnswer: .unreachable(url: url, reason: "connection closed before an answer")
        case .connection(let reason), .timedOut(let reason): .unreachable(url: url, reason: reason)
        case .badResponse(let reason): .badResponse(url: url, reason: reason)
        }
    }
}

/// One read handed to a connection's ``ChunkReadHandler``.
struct ChunkReadRequest: Sendable {
    let head: HTTPRequestHead
    let limit: Int
    let errorBodyLimit: Int
    let silenceLimit: TimeAmount
    let deadline: NIODeadline
    let promise: EventLoopPromise<ChunkReadResponse>

    static func head(_ path: String, host: String, headers: [(String, String)]) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path)
        head.headers.add(name: "Host", value: host)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        return head
    }
}

import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import SpeedyCore
import Synchronization

/// One chunk-sized GET, from a chunkserver or a peer, that gives up on a silent source quickly:
/// the response's head must come within ``headTimeout`` and the body may stall no longer than
/// ``idleTimeout``, however long the whole transfer takes on a slow link. A source that stops
/// answering (a stopped process, a dead host) costs seconds, not a chunk's full time budget.
struct ChunkGetter: Sendable {
    let http: HTTPClient
    var headTimeout: Duration
    var idleTimeout: Duration

    /// Why a GET gave no chunk.
    enum Failure: Error, Sendable, CustomStringConvertible {
        /// The source answered with `status` (404: it does not have it).
        case status(Int)
        /// The body was longer than the chunk.
        case tooLong
        /// No head, or no body bytes, within the timeouts.
        case silent
        /// The connection failed.
        case unreachable(String)
        /// The caller's sink failed (its disk, say); the transfer was fine.
        case sink(PeerError)

        var description: String {
            switch self {
            case .status(let code): "answered \(code)"
            case .tooLong: "sent more bytes than the chunk has"
            case .silent: "went silent"
            case .unreachable(let reason): "unreachable: \(reason)"
            case .sink(let error): "\(error)"
            }
        }
    }

    /// The body of `GET url` (at most `length` bytes; the caller checks length and CRC).
    func get(_ url: String, headers: [(String, String)], length: Int) async throws(Failure) -> ByteBuffer {
        let collected = Collected(capacity: length)
        try await stream(url, headers: headers, length: length) { piece in collected.append(piece) }
        return collected.data
    }

    /// Hands the body of `GET url` to `sink` piece by piece as it arrives (at most `length` bytes
    /// in all; the caller checks length and CRC). An error `sink` throws ends the request and is
    /// rethrown as ``Failure/sink(_:)``.
    func stream(_ url: String, headers: [(String, String)], length: Int, into sink: @escaping @Sendable (ByteBuffer) async throws -> Void) async throws(Failure) {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.headers.add(name: "Accept-Encoding", value: "identity")
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .nanoseconds(Int64(headTimeout.nanoseconds)))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw .silent
        } catch {
            throw .unreachable("\(error)")
        }
        guard response.status == .ok else {
            _ = try? await response.body.collect(upTo: 64 << 10)
            throw .status(Int(response.status.code))
        }
        do {
            try await body(response, length: length, sink: sink)
        } catch let failure as Failure {
            throw failure
        } catch let error as SinkError {
            throw .sink(error.underlying as? PeerError ?? .cache("\(error.underlying)"))
        } catch {
            throw .unreachable("\(error)")
        }
    }

    /// Reads the body into `sink` while a watchdog checks that bytes came within ``idleTimeout``.
    private func body(_ response: HTTPClientResponse, length: Int, sink: @escaping @Sendable (ByteBuffer) async throws -> Void) async throws {
        let progress = Progress()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var received = 0
                for try await piece in response.body {
                    received += piece.readableBytes
                    guard received <= length else { throw Failure.tooLong }
                    do {
                        try await sink(piece)
                    } catch {
                        throw SinkError(underlying: error)
                    }
                    progress.pieces.add(1, ordering: .relaxed)
                }
            }
            group.addTask {
                // Checked four times a period, so a source silent from its first byte or its
                // hundredth is cut off within 1¼ ``idleTimeout``, not up to two.
                var (seen, since) = (0, ContinuousClock.now)
                while true {
                    try await Task.sleep(for: idleTimeout / 4)
                    let now = progress.pieces.load(ordering: .relaxed)
                    if now != seen {
                        (seen, since) = (now, .now)
                    } else if .now - since >= idleTimeout {
                        throw Failure.silent
                    }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// An error of the caller's sink, told apart from the transfer's own.
    private struct SinkError: Error {
        let underlying: any Error
    }

    /// A body collected whole.
    private final class Collected: Sendable {
        private let buffer: Mutex<ByteBuffer>
        init(capacity: Int) { buffer = Mutex(ByteBufferAllocator().buffer(capacity: capacity)) }
        func append(_ piece: ByteBuffer) { buffer.withLock { $0.writeImmutableBuffer(piece) } }
        var data: ByteBuffer { buffer.withLock { $0 } }
    }

    private final class Progress: Sendable {
        let pieces = Atomic<Int>(0)
    }
}

extension Duration {
    /// The duration in whole nanoseconds (saturating).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : scaled &+ attoseconds / 1_000_000_000
    }
}

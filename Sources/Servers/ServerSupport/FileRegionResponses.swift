import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Responses whose body is a byte range of a file, which the kernel sends (`sendfile`) straight
/// from the page cache to the socket: the bytes never enter the process, so there is no read into
/// a buffer, no copy into the socket and no checksum pass on the way out.
///
/// A route answers with ``response(status:headers:length:open:)``: a response with the body's
/// `Content-Length` and no body, whose head carries a token. ``FileRegionHTTP1Channel``'s handler,
/// below Hummingbird's, takes the token off the head and writes the file range in its place.
/// Plain HTTP only: TLS must encrypt the bytes in the process, so a TLS port never gets one.
public final class FileRegionResponses: Sendable {
    /// The internal header carrying the token from the route to the channel handler; never sent.
    static let tokenHeader = "x-speedy-file-region"

    /// A file range waiting for its response head to reach the channel handler.
    struct Pending: Sendable {
        /// Returns a new descriptor of the file (the handler closes it once the range is sent).
        var open: @Sendable () -> Int32
        var length: Int
        var offset: Int
        /// Told once how the write ended: sent in full, or failed (the error says why).
        var finished: @Sendable (Result<Void, any Error>) -> Void
        var registered: ContinuousClock.Instant
        /// When the response was dropped; its head, if it went out, reached the handler by then
        /// or within moments (``orphanGrace``).
        var orphaned: ContinuousClock.Instant?
    }

    /// Why a range's file could not be opened when its head was written (not a disk error: the
    /// store had let the file go, or descriptors ran out).
    public struct OpenError: Error, Sendable {
        /// The `errno` of the failed open.
        public let code: Int32
    }

    /// Marks its range orphaned when the response holding it is dropped: a client that leaves
    /// before the head goes out (on purpose, over and over) leaves no entry for long.
    private final class Claim: Sendable {
        let token: UInt64
        let owner: FileRegionResponses

        init(token: UInt64, owner: FileRegionResponses) {
            self.token = token
            self.owner = owner
        }

        deinit { owner.orphan(token) }
    }

    private struct Table {
        var pending: [UInt64: Pending] = [:]
        var lastSweep = ContinuousClock.now
    }

    private let table = Mutex(Table())
    private let nextToken = Atomic<UInt64>(1)
    /// A range whose response was dropped is removed this long after: its head, if it went out,
    /// was queued for the channel before the response was dropped.
    let orphanGrace: Duration
    /// A range whose head never reached the handler and whose response was never dropped (which
    /// should not happen) is removed after this long: long enough that no head still on its way,
    /// held back by a slow client's full socket, loses its range. Leftovers hold a closure and no
    /// descriptor (``ChunkExtent/open`` holds its volume weakly): this bounds memory only.
    static let unclaimedLifetime: Duration = .seconds(600)
    /// How often the table is searched for leftovers, at most.
    let sweepInterval: Duration

    /// Creates an empty table of pending ranges; the intervals are for tests.
    public init(orphanGrace: Duration = .seconds(5), sweepInterval: Duration = .seconds(1)) {
        self.orphanGrace = orphanGrace
        self.sweepInterval = sweepInterval
    }

    /// A response whose body is `length` bytes of a file from `offset`. `open` returns a new
    /// descriptor of the file (a `dup`), which stays valid if the file is renamed or unlinked
    /// meanwhile; it is called when the head is written, and a descriptor below 0 ends the
    /// connection short of its `Content-Length`, as a failed read would. `finished` is told how
    /// the body's write ended (not at all when the client left before the head went out).
    public func response(
        status: HTTPResponse.Status = .ok, headers: HTTPFields, offset: Int, length: Int, open: @escaping @Sendable () -> Int32,
        finished: @escaping @Sendable (Result<Void, any Error>) -> Void = { _ in }
    ) -> Response {
        let token = nextToken.add(1, ordering: .relaxed).oldValue
        let now = ContinuousClock.now
        table.withLock { table in
            table.pending[token] = Pending(open: open, length: length, offset: offset, finished: finished, registered: now)
            // Leftovers are rare: look for them once a second at most, not on every response.
            if now - table.lastSweep >= sweepInterval {
                table.lastSweep = now
                table.pending = table.pending.filter { _, range in
                    if let orphaned = range.orphaned { return now - orphaned < orphanGrace }
                    return now - range.registered < Self.unclaimedLifetime
                }
            }
        }
        let claim = Claim(token: token, owner: self)
        var headers = headers
        headers[.contentLength] = String(length)
        headers[HTTPField.Name(Self.tokenHeader)!] = String(token)
        // The body's length, for the telemetry's byte counts; the handler writes the bytes.
        return Response(
            status: status, headers: headers,
            body: ResponseBody(contentLength: length) { writer in
                withExtendedLifetime(claim) {}
                try await writer.finish(nil)
            })
    }

    /// The range registered under `token`, removed from the table; nil when unknown.
    func take(_ token: String) -> Pending? {
        guard let number = UInt64(token) else { return nil }
        return table.withLock { $0.pending.removeValue(forKey: number) }
    }

    /// Marks the range under `token`, if still there, as belonging to a dropped response.
    private func orphan(_ token: UInt64) {
        let now = ContinuousClock.now
        table.withLock { table in
            if table.pending[token] != nil { table.pending[token]?.orphaned = now }
        }
    }

    /// Ranges registered and not yet written (for tests).
    public var pendingCount: Int { table.withLock { $0.pending.count } }
}

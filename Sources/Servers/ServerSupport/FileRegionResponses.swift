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
        var registered: ContinuousClock.Instant
    }

    private let pending = Mutex<[UInt64: Pending]>([:])
    private let nextToken = Atomic<UInt64>(1)
    /// A range whose head never reached the handler (the client left first) is dropped after
    /// this long: only a closure is held, no descriptor, so this bounds memory, not files.
    static let unclaimedLifetime: Duration = .seconds(60)

    /// Creates an empty table of pending ranges.
    public init() {}

    /// A response whose body is `length` bytes of a file from `offset`. `open` returns a new
    /// descriptor of the file (a `dup`), which stays valid if the file is renamed or unlinked
    /// meanwhile; it is called when the head is written, and a descriptor below 0 ends the
    /// connection short of its `Content-Length`, as a failed read would.
    public func response(status: HTTPResponse.Status = .ok, headers: HTTPFields, offset: Int, length: Int, open: @escaping @Sendable () -> Int32) -> Response {
        let token = nextToken.add(1, ordering: .relaxed).oldValue
        let now = ContinuousClock.now
        pending.withLock { table in
            table[token] = Pending(open: open, length: length, offset: offset, registered: now)
            // Sweep the rare leftovers now and then rather than on every response.
            if token % 1024 == 0 { table = table.filter { now - $0.value.registered < Self.unclaimedLifetime } }
        }
        var headers = headers
        headers[.contentLength] = String(length)
        headers[HTTPField.Name(Self.tokenHeader)!] = String(token)
        return Response(status: status, headers: headers, body: .init())
    }

    /// The range registered under `token`, removed from the table; nil when unknown.
    func take(_ token: String) -> Pending? {
        guard let number = UInt64(token) else { return nil }
        return pending.withLock { $0.removeValue(forKey: number) }
    }

    /// Ranges registered and not yet written (for tests).
    public var pendingCount: Int { pending.withLock { $0.count } }
}

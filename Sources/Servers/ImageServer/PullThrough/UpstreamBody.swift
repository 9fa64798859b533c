import NIOCore

/// An upstream's blob body that fails once it has come too slowly: after ``Floor/after``, a
/// body that has averaged under ``Floor/bytesPerSecond`` ends with ``UpstreamFillError/tooSlow``.
/// A stall is the HTTP client's read limit's to end; this ends a trickle (a byte now and then,
/// each in time), and ends it as any body failure, so the fill's writer drops what it wrote.
struct UpstreamBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer

    /// The least a body must average, from when on.
    struct Floor: Sendable {
        var after: Duration
        var bytesPerSecond: Int
    }

    let base: Base
    let floor: Floor

    init(_ base: Base, floor: Floor) {
        self.base = base
        self.floor = floor
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let floor: Floor
        let started = ContinuousClock.now
        var received = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let piece = try await base.next() else { return nil }
            received += piece.readableBytes
            let elapsed = ContinuousClock.now - started
            if elapsed > floor.after {
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                if Double(received) < seconds * Double(floor.bytesPerSecond) { throw UpstreamFillError.tooSlow(received: received, seconds: Int(seconds)) }
            }
            return piece
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), floor: floor) }
}

import NIOCore
import SpeedyClients
import SpeedyCore

/// Passes a chunk on to the next member of its write chain while it still arrives here (see
/// ``SpeedyCore/ReplicationChain``): each piece received is handed on at once, so the chunk
/// crosses every link once and the members write it at nearly the same time.
struct ChainForward: Sendable {
    /// Why the rest of the chain does not hold the chunk.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private let pieces: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let request: Task<(info: ChunkInfo, replicas: Int), any Error>
    /// Members after this one.
    let tail: [String]

    /// What a member waits for the rest of the chain when its caller does not say.
    static let defaultTimeout: TimeAmount = .seconds(30)
    /// What a member keeps of its caller's patience for itself: to hear the next member's
    /// answer, drop its copy and answer in turn.
    static let answerMargin: TimeAmount = .seconds(1)

    /// How long to wait for the next member, given that the caller waits `callerTimeoutMs`.
    static func timeout(callerTimeoutMs: Int64?) -> TimeAmount {
        guard let ms = callerTimeoutMs else { return defaultTimeout }
        return max(.seconds(1), min(.milliseconds(ms), .seconds(600)) - answerMargin)
    }

    /// Starts the PUT to `tail[0]`, naming the rest of `tail` as its chain; its body is what
    /// ``send(_:)`` hands on. The pieces wait in memory until sent, at most one chunk of them.
    init(_ key: ChunkKey, length: Int, crc: UInt32, tail: [String], timeout: TimeAmount, peers: ClusterTransport) {
        precondition(!tail.isEmpty)
        let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        self.pieces = continuation
        self.tail = tail
        let next = ChunkServerClient(baseURL: tail[0], timeout: timeout, transport: peers, http: peers.peerHTTP)
        let rest = Array(tail.dropFirst())
        request = Task { try await next.put(key, streaming: stream, length: length, crc: crc, onTo: rest) }
    }

    /// Hands one received piece on.
    func send(_ piece: ByteBuffer) {
        pieces.yield(piece)
    }

    /// Stops passing the chunk on: the body fails rather than ends, even when every byte was
    /// handed on already, so the next member sees a request cut short and drops what it got.
    func abandon() {
        request.cancel()
        pieces.finish(throwing: CancellationError())
    }

    /// Waits for the next member's answer once every piece was sent; it must report the chunk
    /// durable, with `crc` and `length`, on every member after this one.
    func finish(crc: UInt32, length: Int) async throws(Failure) {
        pieces.finish()
        let answer: (info: ChunkInfo, replicas: Int)
        do {
            answer = try await request.value
        } catch {
            throw Failure(description: "\(error)")
        }
        guard answer.info.crc == crc, Int(answer.info.length) == length else {
            throw Failure(description: "\(tail[0]) stored \(answer.info.length) bytes with CRC \(CRCFormat.hex(answer.info.crc))")
        }
        guard answer.replicas == tail.count else {
            throw Failure(description: "\(tail[0]) reported \(answer.replicas) of \(tail.count) copies after this one")
        }
    }
}

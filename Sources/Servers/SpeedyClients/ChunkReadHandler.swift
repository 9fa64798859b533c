import NIOCore
import NIOHTTP1
import SpeedyCore

/// The end of a ``ChunkReadClient`` connection's pipeline: sends one read at a time and gathers
/// its answer into one buffer, checksumming each piece as it comes (still in the CPU's cache).
///
/// A read fails, and the connection is closed, when the member sends more than the read's limit
/// or than it announced, ends short, stays silent for the silence limit, runs past the read's
/// deadline, or sends anything while no read is waiting.
final class ChunkReadHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = ChunkReadRequest
    typealias OutboundOut = HTTPClientRequestPart

    private struct Answer {
        var head: HTTPResponseHead
        var body: ByteBuffer
        var crc = CRC32C()
        var announced: Int?
        var limit: Int
    }

    private var request: ChunkReadRequest?
    private var answer: Answer?
    private var lastHeard = NIODeadline.now()
    private var watchdog: Scheduled<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let read = unwrapOutboundIn(data)
        guard request == nil else {
            read.promise.fail(ChunkReadFailure.connection("a read is already in flight on this connection"))
            promise?.fail(ChannelError.inappropriateOperationForState)
            return
        }
        request = read
        answer = nil
        lastHeard = .now()
        arm(context, in: min(read.silenceLimit, read.deadline - .now()))
        context.write(wrapOutboundOut(.head(read.head)), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastHeard = .now()
        guard let read = request else {
            // Nothing asked for this: the connection cannot be trusted with another read.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            begin(head, for: read, context)
        case .body(let piece):
            guard let limit = answer?.limit, let gathered = answer?.body.readableBytes else { return }
            guard gathered + piece.readableBytes <= limit else {
                return fail(.badResponse("answer over \(limit) bytes"), context)
            }
            // In place: a copy of `answer` would make the buffer shared, and the write copy it all.
            piece.withUnsafeReadableBytes { answer!.crc.update($0) }
            answer!.body.writeImmutableBuffer(piece)
        case .end:
            finish(read, context)
        }
    }

    private func begin(_ head: HTTPResponseHead, for read: ChunkReadRequest, _ context: ChannelHandlerContext) {
        let limit = (200..<300).contains(head.status.code) ? read.limit : read.errorBodyLimit
        let announced = head.headers.first(name: "Content-Length").flatMap { Int($0) }
        if let announced, announced < 0 || announced > limit {
            return fail(.badResponse("answer of \(announced) bytes is over the \(limit)-byte limit"), context)
        }
        // The whole chunk's buffer at once, from the pool: no growing, no copying as it arrives.
        answer = Answer(head: head, body: ChunkBufferPool.allocator.buffer(capacity: announced ?? 0), announced: announced, limit: limit)
    }

    private func finish(_ read: ChunkReadRequest, _ context: ChannelHandlerContext) {
        guard let answer else { return fail(.badResponse("answer ended before its head"), context) }
        if let announced = answer.announced, announced != answer.body.readableBytes {
            return fail(.badResponse("answer has \(answer.body.readableBytes) bytes but Content-Length said \(announced)"), context)
        }
        disarm()
        request = nil
        self.answer = nil
        read.promise.succeed(
            ChunkReadResponse(
                status: Int(answer.head.status.code), headers: answer.head.headers, body: answer.body, crc: answer.crc.value,
                // An answer without a length ends with the connection: nothing else can follow it.
                keepAlive: answer.head.isKeepAlive && (answer.announced != nil || answer.head.headers.contains(name: "Transfer-Encoding"))))
    }

    func channelInactive(context: ChannelHandlerContext) {
        if request != nil {
            fail(answer == nil ? .closedBeforeAnswer : .connection("connection closed part way through the answer"), context)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if request != nil {
            switch error as? HTTPParserError {
            // The connection closed inside an answer: the decoder says so before the close arrives.
            case .invalidEOFState?: fail(.connection("connection closed part way through the answer"), context)
            case let parserError?: fail(.badResponse("malformed answer: \(parserError)"), context)
            // Nothing of the answer came: as good as closed before it (an idle connection reset).
            case nil: fail(answer == nil ? .closedBeforeAnswer : .connection("\(error)"), context)
            }
        } else {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        disarm()
        request?.promise.fail(ChunkReadFailure.connection("connection closed"))
        request = nil
    }

    private func fail(_ failure: ChunkReadFailure, _ context: ChannelHandlerContext) {
        disarm()
        let read = request
        request = nil
        answer = nil
        read?.promise.fail(failure)
        context.close(promise: nil)
    }

    /// Checks for silence (and the deadline) after `delay`, and again until the read ends.
    private func arm(_ context: ChannelHandlerContext, in delay: TimeAmount) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        watchdog = context.eventLoop.scheduleTask(in: max(delay, .milliseconds(1))) {
            let (handler, context) = loopBound.value
            handler.check(context)
        }
    }

    private func check(_ context: ChannelHandlerContext) {
        guard let read = request else { return }
        let now = NIODeadline.now()
        if now >= read.deadline {
            return fail(.timedOut("no whole answer within the read's deadline"), context)
        }
        let silent = now - lastHeard
        if silent >= read.silenceLimit {
            return fail(.timedOut("the member said nothing for \(silent.nanoseconds / 1_000_000) ms"), context)
        }
        arm(context, in: min(read.silenceLimit - silent, read.deadline - now))
    }

    private func disarm() {
        watchdog?.cancel()
        watchdog = nil
    }
}

import Logging
import NIOCore
import NIOHTTP1

/// Closes a connection whose request head does not arrive in time
/// (``ConnectionLimits/headerTimeout``): a client that trickles header bytes, a byte now and then,
/// would otherwise hold its connection for as long as it likes, since every byte resets the idle
/// timer and the head may be 80 KiB.
///
/// Two handlers share one deadline: ``ByteWatcher`` sits before the HTTP decoder (after TLS) and
/// starts the clock at a request's first byte, ``HeadWatcher`` sits after it and stops the clock
/// when the decoded head comes out. The first request's clock starts when the connection is made,
/// so a stalled TLS handshake is bounded too. On the event loop only.
final class RequestHeadDeadline {
    private let timeout: TimeAmount
    private let logger: Logger
    private var timer: Scheduled<Void>?
    /// Between a request's end and the next head: the next byte starts the clock.
    private var awaitingHead = true

    init(timeout: Duration, logger: Logger) {
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + Int64(timeout.components.attoseconds / 1_000_000_000))
        self.logger = logger
    }

    /// The handler before the decoder.
    var byteWatcher: ByteWatcher { ByteWatcher(deadline: self) }
    /// The handler after the decoder.
    var headWatcher: HeadWatcher { HeadWatcher(deadline: self) }

    private func start(_ context: ChannelHandlerContext) {
        guard awaitingHead, timer == nil else { return }
        let channel = context.channel
        let logger = logger
        let timeout = timeout
        // Written raw below the HTTP encoder: no response of this connection is under way, as no
        // request head has come.
        let answer = context.channel.allocator.buffer(
            string: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        let writer = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            logger.notice("closed a connection from \(channel.remoteAddress?.ipAddress ?? "unknown"): no request head within \(timeout.nanoseconds / 1_000_000_000) s")
            ClientConnections.count(.headerTimeout)
            // Closed at once, not when the write completes: behind an unfinished TLS handshake it
            // never would.
            let context = writer.value
            context.writeAndFlush(NIOAny(answer), promise: nil)
            context.close(promise: nil)
        }
    }

    private func headArrived() {
        awaitingHead = false
        timer?.cancel()
        timer = nil
    }

    private func requestEnded() {
        awaitingHead = true
    }

    private func stop() {
        timer?.cancel()
        timer = nil
    }

    /// Starts the clock at the connection and at each request's first byte.
    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        private let deadline: RequestHeadDeadline

        init(deadline: RequestHeadDeadline) {
            self.deadline = deadline
        }

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { deadline.start(context) }
        }

        func channelActive(context: ChannelHandlerContext) {
            deadline.start(context)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            deadline.start(context)
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            deadline.stop()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            deadline.stop()
        }
    }

    /// Stops the clock at each decoded head; a request's end sets it to start at the next byte.
    final class HeadWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        private let deadline: RequestHeadDeadline

        init(deadline: RequestHeadDeadline) {
            self.deadline = deadline
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head: deadline.headArrived()
            case .end: deadline.requestEnded()
            case .body: break
            }
            context.fireChannelRead(data)
        }
    }
}

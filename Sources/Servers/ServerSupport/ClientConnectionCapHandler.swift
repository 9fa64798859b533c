import NIOCore

/// The first handler of every connection: counts it against its client's share of
/// ``ConnectionLimits/maxPerClient`` and closes it at once when it is one too many, before TLS
/// or HTTP spend anything on it.
final class ClientConnectionCapHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private enum State {
        case pending
        case admitted(SocketAddress?)
        case refused
    }

    private let table: ClientConnections
    private var state = State.pending

    init(table: ClientConnections) {
        self.table = table
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if case .pending = state { admit(context) }
        // Even when refused: the handlers after this one see the close that follows.
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .admitted(let peer) = state { table.release(peer) }
        state = .refused
        context.fireChannelInactive()
    }

    private func admit(_ context: ChannelHandlerContext) {
        let peer = context.channel.remoteAddress
        guard table.admit(peer) else {
            state = .refused
            context.close(promise: nil)
            return
        }
        state = .admitted(peer)
    }
}

import Hummingbird
import NIOCore

/// The request context of Speedy's internal APIs: Hummingbird's core storage, the peer's
/// address (which refusals log, and which per-client limits key on) and the connection.
public struct SpeedyRequestContext: RequestContext, ChannelRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connected client's address.
    public let remoteAddress: SocketAddress?
    /// The connection the request came on.
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }
}

extension RemoteAddressRequestContext {
    /// The client's IP address as text ("unknown" when the socket has none), the key of
    /// per-client limits and what logs show.
    public var clientAddress: String { remoteAddress?.ipAddress ?? "unknown" }
}

import Hummingbird
import NIOCore
import ServerSupport

/// The request context of the registry API: the connection, the client's address and, once
/// logged in, who the client is.
public struct RegistryRequestContext: RequestContext, ChannelRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connected client's address.
    public let remoteAddress: SocketAddress?
    /// The connection the request came on.
    public let channel: any Channel
    /// The user the request's credentials name; nil for anonymous requests.
    public var user: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
        channel = source.channel
    }

    /// Whose share of the memory budget and of the rate limits a request counts against: the
    /// user when logged in (one user from many addresses is still one client), else the address.
    var client: String { user.map { "user:" + $0 } ?? clientAddress }
}

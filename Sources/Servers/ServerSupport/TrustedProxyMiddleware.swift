import Hummingbird
import NIOCore
import SpeedyCore

/// A request context whose client address a trusted proxy may name.
public protocol ProxiedRequestContext: RemoteAddressRequestContext {
    /// The client's address: the connection's peer, or the client a trusted proxy named (what
    /// limits key on and logs show).
    var remoteAddress: SocketAddress? { get set }
    /// The connection's peer, whatever a proxy said.
    var peerAddress: SocketAddress? { get }
}

/// Takes the client's address from the forwarding header of requests that come from a trusted
/// proxy (``TrustedProxies``), before anything reads it: the first middleware of its router.
public struct TrustedProxyMiddleware<Context: ProxiedRequestContext>: RouterMiddleware {
    let proxies: TrustedProxies

    /// A middleware trusting `proxies`.
    public init(proxies: TrustedProxies) {
        self.proxies = proxies
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let client = proxies.client(peer: context.peerAddress, headers: request.headers) else {
            return try await next(request, context)
        }
        var context = context
        context.remoteAddress = client
        return try await next(request, context)
    }
}

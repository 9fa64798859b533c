import Hummingbird
import NIOCore
import ServerSupport
import SpeedyCore

/// The request context of the registry API: the connection, the client's address and, once
/// logged in, who the client is.
public struct RegistryRequestContext: RequestContext, ChannelRequestContext, ProxiedRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's address: the connection's peer, or the client a trusted proxy named
    /// (``TrustedProxyMiddleware``).
    public var remoteAddress: SocketAddress?
    /// The connection's peer.
    public let peerAddress: SocketAddress?
    /// The connection the request came on.
    public let channel: any Channel
    /// What the request's credentials allow (everything when the registry has no logins).
    var access = RegistryAccess.open

    /// The user the request's credentials name; nil for anonymous requests.
    public var user: String? { access.identity.user }

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peerAddress = source.channel.remoteAddress
        remoteAddress = peerAddress
        channel = source.channel
    }

    /// Whose share of the memory budget and of the rate limits a request counts against: the
    /// user when logged in (one user from many addresses is still one client), else the address.
    var client: String { user.map { "user:" + $0 } ?? clientNetwork }
}

/// The checked identity of a request and what it may do.
struct RegistryAccess: Sendable {
    let auth: RegistryAuth?
    let identity: RegistryIdentity

    /// No logins: everyone may do everything.
    static let open = RegistryAccess(auth: nil, identity: .anonymous)

    /// Which repositories the caller's catalog shows.
    enum CatalogScope {
        /// Every one: the registry has no logins.
        case everything
        /// None: no rule lets the caller pull anything, so no name need be read at all.
        case nothing
        /// Those the test passes: the caller may pull them.
        case only(@Sendable (String) -> Bool)
    }

    /// What the caller's catalog shows: the repositories the policy lets it pull (a token's own
    /// scopes do not matter here; catalog tokens name no repository).
    func catalogScope() -> CatalogScope {
        guard let policy = auth?.currentPolicy() else { return .everything }
        let user = identity.user
        guard policy.pullsAnything(user) else { return .nothing }
        return .only { policy.actions(for: user, on: $0).contains(.pull) }
    }

    /// Whether the request may do `action` on `repository`.
    func may(_ action: RegistryAction, on repository: String) -> Bool {
        guard let auth else { return true }
        return auth.allows(identity, action, on: repository)
    }
}

import Hummingbird
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

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

    /// What per-client limits key on: the IPv4 address, or the /64 of an IPv6 one (a host is
    /// handed a whole /64, and must not get a fresh share with every address in it).
    public var clientNetwork: String { ClientNetwork.key(remoteAddress) }
}

/// The key of per-client limits for a peer address.
public enum ClientNetwork {
    /// The IPv4 address as text, an IPv6 address's /64 (`2001:db8:0:1::/64`), or "unknown".
    public static func key(_ address: SocketAddress?) -> String {
        let text = address?.ipAddress ?? "unknown"
        guard case .v6? = address else { return text }
        var bytes = [UInt8](repeating: 0, count: 16)
        guard inet_pton(AF_INET6, text, &bytes) == 1 else { return text }
        // An IPv4-mapped or loopback address (first 64 bits zero) is its own host.
        if bytes.prefix(8).allSatisfy({ $0 == 0 }) { return text }
        return stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }
            .joined(separator: ":") + "::/64"
    }
}

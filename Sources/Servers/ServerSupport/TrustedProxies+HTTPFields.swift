import HTTPTypes
import NIOCore
import SpeedyCore

extension TrustedProxies {
    /// The client's address for a request from `peer` with `headers`: see
    /// ``TrustedProxies/client(peer:forwarded:)``, given the values of the proxies' header.
    public func client(peer: SocketAddress?, headers: HTTPFields) -> SocketAddress? {
        client(peer: peer, forwarded: headers[values: HTTPField.Name(header.rawValue)!])
    }
}

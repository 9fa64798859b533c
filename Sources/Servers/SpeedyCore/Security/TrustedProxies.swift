import NIOCore

/// The proxies (`--trusted-proxy CIDR`) whose word on the client's address is taken: a request
/// that comes from one of them is counted against, limited as, and logged as the client its
/// forwarding header names. From any other peer the header is ignored, whatever it says.
public struct TrustedProxies: Sendable {
    /// Which header the proxies set. Only one is read: a proxy that sets one passes the other
    /// through as the client sent it, so reading both would let a client choose its address.
    public enum Header: String, Sendable, CaseIterable {
        /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, most load balancers).
        case xForwardedFor = "x-forwarded-for"
        /// RFC 7239's `Forwarded: for=client;proto=https, for=proxy1`.
        case forwarded
    }

    /// The proxies.
    public var networks: [IPNetwork]
    /// The header they set.
    public var header: Header

    /// Hops read from the right of the header at most; a longer chain is not a real one.
    package static let maximumHops = 32

    /// Proxies in `networks` that set `header`.
    public init(networks: [IPNetwork], header: Header = .xForwardedFor) {
        self.networks = networks
        self.header = header
    }

    /// Whether `peer` is one of the proxies.
    public func trusts(_ peer: SocketAddress?) -> Bool {
        networks.contains { $0.contains(peer) }
    }

    /// The client's address for a request from `peer`: when `peer` is a trusted proxy, the
    /// rightmost address in the header that is not itself a trusted proxy (each proxy appends
    /// the address it saw, so entries further left are the client's own claims); else nil, as
    /// it is when the header is missing or that entry is not an IP address.
    /// `values` are the request's values of ``header``, in order (ServerSupport reads them from
    /// the request's fields).
    public func client(peer: SocketAddress?, forwarded values: [String]) -> SocketAddress? {
        guard trusts(peer) else { return nil }
        guard !values.isEmpty else { return nil }
        let hops = Self.hops(values.joined(separator: ","), header: header, last: Self.maximumHops)
        for hop in hops.reversed() {
            guard let bytes = hop else { return nil }
            let address = Self.socketAddress(bytes)
            if !trusts(address) { return address }
        }
        return nil
    }

    /// The addresses of a forwarding header's last `last` hops, in order; nil for a hop that
    /// names no IP address (`unknown`, an obfuscated `_name`, garbage). Only those are parsed,
    /// however long the header.
    package static func hops(_ value: String, header: Header, last: Int = .max) -> [[UInt8]?] {
        value.split(separator: ",", omittingEmptySubsequences: false).suffix(last).map { element in
            switch header {
            case .xForwardedFor: return address(element.trimmingSpaces)
            case .forwarded:
                let pairs = element.split(separator: ";").map { $0.trimmingSpaces }
                guard let pair = pairs.first(where: { $0.lowercased().hasPrefix("for=") }) else { return nil }
                var node = pair.dropFirst(4)
                if node.hasPrefix("\""), node.hasSuffix("\""), node.count >= 2 { node = node.dropFirst().dropLast() }
                return address(node)
            }
        }
    }

    /// An IP address, with or without a port: `192.0.2.1`, `192.0.2.1:443`, `2001:db8::1`,
    /// `[2001:db8::1]`, `[2001:db8::1]:443`.
    package static func address(_ text: Substring) -> [UInt8]? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy { $0.isASCII && $0.isNumber } && rest.count <= 6) else {
                return nil
            }
            let inner = text[text.index(after: text.startIndex)..<close]
            return IPNetwork.parseAddress(inner).flatMap { $0.count == 16 ? $0 : nil }
        }
        if text.filter({ $0 == ":" }).count == 1 {
            let parts = text.split(separator: ":")
            guard parts.count == 2, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 5 else { return nil }
            return IPNetwork.parseAddress(parts[0]).flatMap { $0.count == 4 ? $0 : nil }
        }
        return IPNetwork.parseAddress(text)
    }

    package static func socketAddress(_ bytes: [UInt8]) -> SocketAddress? {
        guard let text = IPNetwork.text(bytes) else { return nil }
        return try? SocketAddress(ipAddress: text, port: 0)
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    fileprivate var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" { text = text.dropLast() }
        return text
    }
}

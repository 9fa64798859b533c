import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// An IPv4 or IPv6 network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a
/// network of one), as `--trusted-proxy` takes it.
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// The network's address bytes (4 or 16), with the bits past the prefix cleared.
    public let address: [UInt8]
    /// How many leading bits a member shares with ``address``.
    public let prefixLength: Int

    /// Parses `text`; nil when it is not an address, or its prefix is not 0...32 (IPv4) or
    /// 0...128 (IPv6) in decimal digits.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = Self.parseAddress(parts[0]) else { return nil }
        let bits = bytes.count * 8
        var prefix = bits
        if parts.count == 2 {
            let digits = parts[1]
            // At most three digits: no overflow, and no "+8" or " 8" that Int() would take.
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = Int(digits), value <= bits else {
                return nil
            }
            prefix = value
        }
        address = Self.masked(bytes, prefix)
        prefixLength = prefix
    }

    /// Whether `bytes` (4 or 16 of them) lie in the network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.1`) is taken as its IPv4 address.
    public func contains(_ bytes: [UInt8]) -> Bool {
        var bytes = bytes
        if bytes.count == 16, address.count == 4, bytes.prefix(10).allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes.suffix(4))
        }
        guard bytes.count == address.count else { return false }
        return Self.masked(bytes, prefixLength) == address
    }

    /// Whether the socket address is in the network; false for a Unix socket or none.
    public func contains(_ socket: SocketAddress?) -> Bool {
        guard let bytes = Self.bytes(of: socket) else { return false }
        return contains(bytes)
    }

    public var description: String {
        let text = Self.text(address) ?? "?"
        return prefixLength == address.count * 8 ? text : "\(text)/\(prefixLength)"
    }

    /// The address bytes of an IP text (`inet_pton`, which accepts nothing else: no ports, no
    /// zones, no leading zeros in IPv4); nil for anything else.
    public static func parseAddress(_ text: some StringProtocol) -> [UInt8]? {
        let string = String(text)
        guard !string.isEmpty, string.utf8.count <= 64 else { return nil }
        if string.contains(":") {
            var bytes = [UInt8](repeating: 0, count: 16)
            return inet_pton(AF_INET6, string, &bytes) == 1 ? bytes : nil
        }
        var bytes = [UInt8](repeating: 0, count: 4)
        return inet_pton(AF_INET, string, &bytes) == 1 ? bytes : nil
    }

    /// The address bytes of a socket address; nil for a Unix socket or none.
    public static func bytes(of socket: SocketAddress?) -> [UInt8]? {
        switch socket {
        // By offset, as every sockaddr lays them out (family and port, then for IPv6 the flow
        // label): the fields' names come from NIO's C module, which SpeedyCore does not import.
        case .v4(let v4)?: withUnsafeBytes(of: v4.address) { Array($0[4..<8]) }
        case .v6(let v6)?: withUnsafeBytes(of: v6.address) { Array($0[8..<24]) }
        default: nil
        }
    }

    /// An address's usual text form.
    static func text(_ bytes: [UInt8]) -> String? {
        var out = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        guard inet_ntop(family, bytes, &out, socklen_t(out.count)) != nil else { return nil }
        return String(cString: out)
    }

    private static func masked(_ bytes: [UInt8], _ prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let kept = min(max(prefix - index * 8, 0), 8)
            return kept == 8 ? byte : byte & ~(UInt8.max >> kept)
        }
    }
}

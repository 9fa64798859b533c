import Crypto
import NIOCore
import SpeedyCore

/// Why a request does not carry a good peer signature.
public enum PeerSignatureError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No `Authorization: SpeedyPeer` header, or not the signature's shape.
    case malformed
    /// Shaped right, but not signed with this swarm's peer secret, or for another request.
    case badSignature
    /// Signed more than ``PeerKey/allowedSkewMs`` away from now.
    case stale

    public var description: String {
        switch self {
        case .malformed: "no peer signature (Authorization: SpeedyPeer)"
        case .badSignature: "peer signature does not check"
        case .stale: "peer signature too old or from the future"
        }
    }
}

/// Signs and checks the requests node agents (`speedy peer`) send each other and the tracker,
/// under a key derived from the peer secret (`--peer-secret-file`), so a stranger on the network
/// can neither read chunks from the swarm nor announce itself into it, and the secret itself
/// never crosses the wire (docs/security.md).
///
/// `Authorization: SpeedyPeer <agent>.<unixMs>.<mac>`, where `mac` is base64url without padding
/// of HMAC-SHA256 over `speedy-peer-v1|<METHOD>|<path and query>|<agent>|<unixMs>|<hex SHA-256
/// of the body>` under HKDF-SHA256(peer secret, info `speedy peer requests v1`). A signature is
/// accepted within ``allowedSkewMs`` of the receiver's clock; a replay inside that window repeats
/// the same request, which reads the same chunk or restates the same announce.
public struct PeerKey: Sendable {
    /// The scheme of the `Authorization` header.
    public static let scheme = "SpeedyPeer"
    /// How far a signature's time may be from the receiver's clock.
    public static let allowedSkewMs: Int64 = 60_000
    /// The longest header value looked at.
    public static let maxHeaderBytes = 200

    private static let derivationInfo = "speedy peer requests v1"
    private static let macPrefix = "speedy-peer-v1"
    /// SHA-256 of no bytes, for requests without a body.
    public static let emptyBodyHash = SpeedyCore.Digest.of([]).hex

    private let key: SymmetricKey

    /// The key of the swarm whose peer secret is `secret`.
    public init(secret: ClusterSecret) {
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.value.utf8)), info: Array(Self.derivationInfo.utf8), outputByteCount: 32)
    }

    /// Whether `agent` may name a signer: 1 to 64 letters, digits or `-`.
    public static func isValidAgent(_ agent: some Collection<UInt8>) -> Bool {
        (1...64).contains(agent.count) && agent.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2D
        }
    }

    /// The hex SHA-256 of a request body, as the signature covers it.
    public static func bodyHash(_ body: ByteBuffer) -> String {
        var hasher = SHA256Hasher()
        hasher.update(body)
        return hasher.finalize().hex
    }

    /// The `Authorization` value that signs `method target` with body hash `bodyHash` as `agent` at `nowMs`.
    public func authorization(method: String, target: String, bodyHash: String = PeerKey.emptyBodyHash, agent: String, nowMs: Int64) -> String {
        precondition(Self.isValidAgent(Array(agent.utf8)), "agent ids are 1 to 64 letters, digits or -")
        let mac = HMAC<SHA256>.authenticationCode(for: Self.message(method, target, agent, nowMs, bodyHash), using: key)
        return "\(Self.scheme) \(agent).\(nowMs).\(Base64URL.encode(Array(mac)))"
    }

    /// The agent that signed `header` for `method target` with body hash `bodyHash`, once its
    /// shape, signature and time check out at `nowMs`.
    public func verify(_ header: String?, method: String, target: String, bodyHash: String, nowMs: Int64) throws(PeerSignatureError) -> String {
        guard let header, header.utf8.count <= Self.maxHeaderBytes, header.hasPrefix(Self.scheme + " ") else { throw .malformed }
        let parts = Array(header.utf8.dropFirst(Self.scheme.utf8.count + 1)).split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 3, Self.isValidAgent(parts[0]),
            parts[1].count <= 16, parts[1].allSatisfy({ (0x30...0x39).contains($0) }), !parts[1].isEmpty,
            let signedMs = Int64(String(decoding: parts[1], as: UTF8.self)),
            let mac = Base64URL.decode(parts[2]), mac.count == 32
        else { throw .malformed }
        let agent = String(decoding: parts[0], as: UTF8.self)
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: Self.message(method, target, agent, signedMs, bodyHash), using: key)
        else { throw .badSignature }
        guard abs(nowMs - signedMs) <= Self.allowedSkewMs else { throw .stale }
        return agent
    }

    private static func message(_ method: String, _ target: String, _ agent: String, _ ms: Int64, _ bodyHash: String) -> [UInt8] {
        Array("\(macPrefix)|\(method)|\(target)|\(agent)|\(ms)|\(bodyHash)".utf8)
    }
}

import Crypto
import SpeedyCore
import Synchronization

import Foundation

/// Why a chunk ticket does not let its bearer read a chunk.
public enum ChunkTicketError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Not a ticket: wrong shape, version, number or length.
    case malformed
    /// Shaped like a ticket, but not signed by this cluster's key (altered, forged, or signed
    /// under a secret since rotated).
    case badSignature
    /// Signed by this cluster, but its time has passed.
    case expired
    /// A good ticket for another chunk.
    case otherChunk

    public var description: String {
        switch self {
        case .malformed: "ticket malformed"
        case .badSignature: "ticket signature does not check"
        case .expired: "ticket expired"
        case .otherChunk: "ticket is for another chunk"
        }
    }
}

/// Signs and checks chunk tickets: what lets a node agent (`speedy peer`), which never holds the
/// cluster secret, `GET` or `HEAD` one chunk on a chunkserver until a deadline (docs/security.md).
///
/// A ticket is `<version>.<group>.<fileId>.<expiresMs>.<signature>`, the signature in base64url
/// without padding over `speedy-chunk-ticket-<version>|<group>|<fileId>|<expiresMs>`:
/// - `v1`, with one cluster secret for every role: HMAC-SHA256 under a key derived from the
///   secret (HKDF-SHA256, info `speedy chunk tickets v1`). Whoever checks could also sign.
/// - `v2`, with a role table (``RoleTable``): Ed25519, under a private key the imageserver derives
///   from its own secret (HKDF-SHA256, info `speedy chunk tickets ed25519 v2`); chunkservers check
///   with the public key the table lists, so a chunkserver cannot make a ticket.
///
/// Rotating the secret the key comes from revokes every ticket signed under it.
public struct ChunkTicketKey: Sendable {
    /// The longest ticket looked at; anything longer is ``ChunkTicketError/malformed`` unread.
    public static let maxTicketBytes = 200

    private enum Key: Sendable {
        case mac(SymmetricKey)
        case signer(Curve25519.Signing.PrivateKey)
        case verifier(Curve25519.Signing.PublicKey)
    }

    private static let macInfo = "speedy chunk tickets v1"
    private static let signingInfo = "speedy chunk tickets ed25519 v2"
    /// Base64url lengths, without padding, of a 32-byte MAC and a 64-byte signature.
    private static let macCharacters = 43
    private static let signatureCharacters = 86

    private let key: Key
    private var version: String {
        if case .mac = key { "v1" } else { "v2" }
    }

    /// The `v1` ticket key of the cluster whose one shared secret is `secret`.
    public init(secret: ClusterSecret) {
        key = .mac(
            HKDF<SHA256>.deriveKey(
                inputKeyMaterial: SymmetricKey(data: Array(secret.value.utf8)), info: Array(Self.macInfo.utf8), outputByteCount: 32))
    }

    /// The `v2` signing key of the imageserver whose own secret (in a cluster with a role table)
    /// is `secret`.
    public init(signingWith secret: ClusterSecret) {
        let seed = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.value.utf8)), info: Array(Self.signingInfo.utf8), outputByteCount: 32)
        // Any 32 bytes are an Ed25519 seed.
        key = .signer(try! Curve25519.Signing.PrivateKey(rawRepresentation: seed.withUnsafeBytes { Array($0) }))
    }

    /// A `v2` key that checks tickets only, from an imageserver's public key (``RoleTable/ticketKeys``);
    /// nil when the bytes are not an Ed25519 public key.
    public init?(verifying publicKey: [UInt8]) {
        guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: publicKey) else { return nil }
        self.key = .verifier(key)
    }

    /// The public key that checks what the imageserver holding `secret` signs (what `speedy
    /// credentials` writes in the role table).
    public static func publicKey(signingWith secret: ClusterSecret) -> [UInt8] {
        let derived = ChunkTicketKey(signingWith: secret)
        switch derived.key {
        case .signer(let key): return Array(key.publicKey.rawRepresentation)
        case .mac, .verifier: preconditionFailure("init(signingWith:) makes a signer")
        }
    }

    /// The `v2` signing key of `secret`, derived once per secret (an imageserver signs with it
    /// for every chunk map it serves) and kept for the last few secrets.
    public static func signer(for secret: ClusterSecret) -> ChunkTicketKey {
        signers.withLock { cache in
            if let key = cache.first(where: { $0.secret == secret })?.key { return key }
            let key = ChunkTicketKey(signingWith: secret)
            cache = [(secret, key)] + cache.prefix(3)
            return key
        }
    }

    private static let signers = Mutex<[(secret: ClusterSecret, key: ChunkTicketKey)]>([])

    /// Whether this key can sign (a verifying key cannot).
    public var canSign: Bool {
        if case .verifier = key { false } else { true }
    }

    /// A ticket that lets its bearer read `chunk` until `expiresMs` (wall clock milliseconds since
    /// 1970). A verifying key (see ``canSign``) cannot sign: it traps.
    public func ticket(for chunk: ChunkKey, expiresMs: Int64) -> String {
        let message = Self.message(version, chunk, expiresMs)
        let signature: [UInt8]
        switch key {
        case .mac(let key): signature = Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
        case .signer(let key): signature = Array(try! key.signature(for: message))
        case .verifier: preconditionFailure("a verifying ticket key cannot sign")
        }
        return "\(version).\(chunk.group).\(chunk.fileId).\(expiresMs).\(Base64URL.encode(signature))"
    }

    /// Checks that `ticket` was signed with this key, has not expired at `nowMs`, and names `chunk`.
    public func check(_ ticket: String, for chunk: ChunkKey, nowMs: Int64) throws(ChunkTicketError) {
        guard try verify(ticket, nowMs: nowMs) == chunk else { throw .otherChunk }
    }

    /// The chunk `ticket` lets its bearer read, once its shape, signature and time check out at
    /// `nowMs` (in that order: a forged ticket is ``ChunkTicketError/badSignature`` whatever its
    /// time; a ticket of the other version is one this key did not sign).
    public func verify(_ ticket: String, nowMs: Int64) throws(ChunkTicketError) -> ChunkKey {
        let parsed = try Self.parse(ticket)
        guard parsed.version == version else { throw .badSignature }
        let message = Self.message(version, parsed.chunk, parsed.expiresMs)
        let valid: Bool
        switch key {
        case .mac(let key): valid = HMAC<SHA256>.isValidAuthenticationCode(parsed.signature, authenticating: message, using: key)
        case .signer(let key): valid = key.publicKey.isValidSignature(parsed.signature, for: message)
        case .verifier(let key): valid = key.isValidSignature(parsed.signature, for: message)
        }
        guard valid else { throw .badSignature }
        guard nowMs < parsed.expiresMs else { throw .expired }
        return parsed.chunk
    }

    private static func message(_ version: String, _ chunk: ChunkKey, _ expiresMs: Int64) -> [UInt8] {
        Array("speedy-chunk-ticket-\(version)|\(chunk.group)|\(chunk.fileId)|\(expiresMs)".utf8)
    }

    /// A ticket's parts; throws ``ChunkTicketError/malformed`` for anything but the canonical form.
    private static func parse(_ ticket: String) throws(ChunkTicketError) -> (
        version: String, chunk: ChunkKey, expiresMs: Int64, signature: [UInt8]
    ) {
        let bytes = Array(ticket.utf8)
        guard !bytes.isEmpty, bytes.count <= maxTicketBytes else { throw .malformed }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 5 else { throw .malformed }
        let (version, characters, bytesLong) =
            parts[0].elementsEqual("v1".utf8) ? ("v1", macCharacters, 32)
            : parts[0].elementsEqual("v2".utf8) ? ("v2", signatureCharacters, 64) : ("", 0, 0)
        guard !version.isEmpty,
            let group = DecimalText.parse(parts[1], as: UInt32.self),
            let fileId = DecimalText.parse(parts[2], as: UInt64.self),
            let expiresMs = DecimalText.parse(parts[3], as: Int64.self),
            parts[4].count == characters, let signature = Base64URL.decode(parts[4]), signature.count == bytesLong
        else { throw .malformed }
        return (version, ChunkKey(group: group, fileId: fileId), expiresMs, signature)
    }

    /// Canonical decimal numbers: digits only, no sign, no leading zero, no overflow.
    private enum DecimalText {
        static func parse<T: FixedWidthInteger>(_ digits: ArraySlice<UInt8>, as: T.Type) -> T? {
            guard !digits.isEmpty, digits.count <= 20, digits.count == 1 || digits.first != UInt8(ascii: "0") else { return nil }
            var value: T = 0
            for byte in digits {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(T(byte - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else { return nil }
                value = sum
            }
            return value
        }
    }
}

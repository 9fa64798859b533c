import Crypto
import SpeedyCore

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
/// A ticket is `v1.<group>.<fileId>.<expiresMs>.<mac>`, where `mac` is base64url without padding
/// of HMAC-SHA256 over `speedy-chunk-ticket-v1|<group>|<fileId>|<expiresMs>` under a key derived
/// from the cluster secret (HKDF-SHA256, info `speedy chunk tickets v1`), so rotating the secret
/// revokes every ticket. The imageserver signs; chunkservers check.
public struct ChunkTicketKey: Sendable {
    /// The longest ticket looked at; anything longer is ``ChunkTicketError/malformed`` unread.
    public static let maxTicketBytes = 200

    private static let version = "v1"
    private static let derivationInfo = "speedy chunk tickets v1"
    private static let macPrefix = "speedy-chunk-ticket-v1"
    /// Base64url of a 32-byte MAC, without padding.
    private static let macCharacters = 43

    private let key: SymmetricKey

    /// The ticket key of the cluster whose secret is `secret`.
    public init(secret: ClusterSecret) {
        key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Array(secret.value.utf8)), info: Array(Self.derivationInfo.utf8), outputByteCount: 32)
    }

    /// A ticket that lets its bearer read `chunk` until `expiresMs` (wall clock milliseconds since 1970).
    public func ticket(for chunk: ChunkKey, expiresMs: Int64) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Self.message(chunk, expiresMs), using: key)
        return "\(Self.version).\(chunk.group).\(chunk.fileId).\(expiresMs).\(Base64URL.encode(Array(mac)))"
    }

    /// Checks that `ticket` was signed with this key, has not expired at `nowMs`, and names `chunk`.
    public func check(_ ticket: String, for chunk: ChunkKey, nowMs: Int64) throws(ChunkTicketError) {
        guard try verify(ticket, nowMs: nowMs) == chunk else { throw .otherChunk }
    }

    /// The chunk `ticket` lets its bearer read, once its shape, signature and time check out at
    /// `nowMs` (in that order: a forged ticket is ``ChunkTicketError/badSignature`` whatever its time).
    public func verify(_ ticket: String, nowMs: Int64) throws(ChunkTicketError) -> ChunkKey {
        let parsed = try Self.parse(ticket)
        let message = Self.message(parsed.chunk, parsed.expiresMs)
        guard HMAC<SHA256>.isValidAuthenticationCode(parsed.mac, authenticating: message, using: key) else { throw .badSignature }
        guard nowMs < parsed.expiresMs else { throw .expired }
        return parsed.chunk
    }

    private static func message(_ chunk: ChunkKey, _ expiresMs: Int64) -> [UInt8] {
        Array("\(macPrefix)|\(chunk.group)|\(chunk.fileId)|\(expiresMs)".utf8)
    }

    /// A ticket's parts; throws ``ChunkTicketError/malformed`` for anything but the canonical form.
    private static func parse(_ ticket: String) throws(ChunkTicketError) -> (chunk: ChunkKey, expiresMs: Int64, mac: [UInt8]) {
        let bytes = Array(ticket.utf8)
        guard !bytes.isEmpty, bytes.count <= maxTicketBytes else { throw .malformed }
        let parts = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].elementsEqual(version.utf8),
            let group = DecimalText.parse(parts[1], as: UInt32.self),
            let fileId = DecimalText.parse(parts[2], as: UInt64.self),
            let expiresMs = DecimalText.parse(parts[3], as: Int64.self),
            parts[4].count == macCharacters, let mac = Base64URL.decode(parts[4]), mac.count == 32
        else { throw .malformed }
        return (ChunkKey(group: group, fileId: fileId), expiresMs, mac)
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

/// Base64url without padding (RFC 4648 section 5), strict: a decoded value re-encodes to exactly
/// the text it came from, so no two texts name the same bytes.
enum Base64URL {
    static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        let alphabet = { (b: UInt8) in
            (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || (b >= 0x30 && b <= 0x39) || b == 0x2D || b == 0x5F
        }
        guard text.allSatisfy(alphabet), text.count % 4 != 1 else { return nil }
        var standard = String(decoding: text, as: UTF8.self).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        standard += String(repeating: "=", count: (4 - standard.utf8.count % 4) % 4)
        guard let data = Data(base64Encoded: standard) else { return nil }
        let bytes = Array(data)
        guard encode(bytes).utf8.elementsEqual(text) else { return nil }
        return bytes
    }
}

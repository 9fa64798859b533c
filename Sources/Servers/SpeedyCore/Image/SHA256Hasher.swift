import CSpeedy
import NIOCore

/// A streaming SHA-256 whose state can be saved and restored, so a blob upload split over many
/// requests (and imageservers) hashes every byte exactly once.
public struct SHA256Hasher: Sendable {
    private var state: [UInt8]

    /// A fresh hash.
    public init() {
        state = [UInt8](repeating: 0, count: Int(SPEEDY_SHA256_STATE_BYTES))
        _ = state.withUnsafeMutableBytes { speedy_sha256_init($0.baseAddress) }
    }

    /// Continues from a state saved by ``savedState``; nil if the bytes are not one.
    public init?(savedState: [UInt8]) {
        guard savedState.count == Int(SPEEDY_SHA256_STATE_BYTES) else { return nil }
        state = savedState
    }

    /// The state to store with an upload session.
    public var savedState: [UInt8] { state }

    /// Feeds bytes in.
    public mutating func update(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            _ = state.withUnsafeMutableBytes { speedy_sha256_update($0.baseAddress, bytes.baseAddress, bytes.count) }
        }
    }

    /// Feeds bytes in.
    public mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            _ = state.withUnsafeMutableBytes { speedy_sha256_update($0.baseAddress, raw.baseAddress, raw.count) }
        }
    }

    /// The digest of everything fed so far (the hasher can keep going).
    public func finalize() -> Digest {
        Digest(algorithm: .sha256, hex: finalizeBytes().hexString)
    }

    /// The digest's 32 bytes.
    public func finalizeBytes() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        state.withUnsafeBytes { s in _ = out.withUnsafeMutableBytes { speedy_sha256_final(s.baseAddress, $0.baseAddress) } }
        return out
    }
}

extension Digest {
    /// The digest of `bytes` with `algorithm`.
    public static func of(_ bytes: [UInt8], algorithm: Algorithm = .sha256) -> Digest {
        switch algorithm {
        case .sha256:
            var hasher = SHA256Hasher()
            hasher.update(bytes)
            return hasher.finalize()
        case .sha512:
            var out = [UInt8](repeating: 0, count: 64)
            bytes.withUnsafeBytes { raw in out.withUnsafeMutableBytes { speedy_sha512(raw.baseAddress, raw.count, $0.baseAddress) } }
            return Digest(algorithm: .sha512, hex: out.hexString)
        }
    }
}

extension [UInt8] {
    /// Lower-case hex.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(count * 2)
        for byte in self {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

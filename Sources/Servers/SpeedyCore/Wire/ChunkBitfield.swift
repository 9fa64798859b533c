/// Which chunks of a blob an agent holds: bit `i` is chunk `i` of the blob's ``ChunkMap``, the
/// most significant bit of byte 0 first (as BitTorrent's `bitfield` message). On the wire it is
/// base64 of `(count + 7) / 8` bytes, and the bits past `count` are zero.
public struct ChunkBitfield: Sendable, Equatable, Codable {
    /// The most chunks a bitfield may describe: a 4 TiB blob of 4 MiB chunks.
    public static let maxCount = 1 << 20

    /// How many chunks the blob has.
    public let count: Int
    private var bytes: [UInt8]

    /// An empty bitfield for a blob of `count` chunks (`0...maxCount`).
    public init(count: Int) {
        precondition((0...Self.maxCount).contains(count), "a bitfield has 0...\(Self.maxCount) chunks")
        self.count = count
        bytes = [UInt8](repeating: 0, count: (count + 7) / 8)
    }

    /// A full bitfield: every chunk held.
    public static func full(count: Int) -> ChunkBitfield {
        var field = ChunkBitfield(count: count)
        for index in 0..<count { field.insert(index) }
        return field
    }

    /// The bitfield `base64` names for a blob of `count` chunks; nil when `count` is out of range,
    /// the text is not base64 of exactly the right length, or a bit past `count` is set.
    public init?(count: Int, base64: String) {
        guard (0...Self.maxCount).contains(count), base64.utf8.count <= (Self.maxCount / 8 + 2) / 3 * 4 + 4,
            let decoded = Base64Text.decode(base64), decoded.count == (count + 7) / 8
        else { return nil }
        if count % 8 != 0, let last = decoded.last, last & (0xFF >> (count % 8)) != 0 { return nil }
        self.count = count
        bytes = decoded
    }

    /// The wire form: base64 of the bytes.
    public var base64: String { Base64Text.encode(bytes) }

    /// Whether chunk `index` is held (false outside `0..<count`).
    public func contains(_ index: Int) -> Bool {
        guard index >= 0, index < count else { return false }
        return bytes[index >> 3] & (0x80 >> UInt8(index & 7)) != 0
    }

    /// Marks chunk `index` held.
    public mutating func insert(_ index: Int) {
        precondition(index >= 0 && index < count, "chunk \(index) outside 0..<\(count)")
        bytes[index >> 3] |= 0x80 >> UInt8(index & 7)
    }

    /// Whether every chunk held here is held in `other` too (a bitfield of another count never is).
    public func isSubset(of other: ChunkBitfield) -> Bool {
        count == other.count && zip(bytes, other.bytes).allSatisfy { $0 & ~$1 == 0 }
    }

    /// How many chunks are held.
    public var held: Int { bytes.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// Whether every chunk is held.
    public var isComplete: Bool { held == count }

    private enum CodingKeys: String, CodingKey { case count, have }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let count = try container.decode(Int.self, forKey: .count)
        let text = try container.decode(String.self, forKey: .have)
        guard let field = ChunkBitfield(count: count, base64: text) else {
            throw DecodingError.dataCorruptedError(forKey: .have, in: container, debugDescription: "not a bitfield of \(count) chunks")
        }
        self = field
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(count, forKey: .count)
        try container.encode(base64, forKey: .have)
    }
}

/// Standard base64 with padding, strict (a decoded value re-encodes to the same text), without Foundation.
enum Base64Text {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let b0 = UInt32(bytes[index])
            let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
            let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
            let triple = b0 << 16 | b1 << 8 | b2
            out.append(alphabet[Int(triple >> 18 & 63)])
            out.append(alphabet[Int(triple >> 12 & 63)])
            out.append(index + 1 < bytes.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
            out.append(index + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 4 == 0 else { return nil }
        var values: [UInt8] = []
        values.reserveCapacity(chars.count / 4 * 3)
        var index = 0
        while index < chars.count {
            var quad: UInt32 = 0
            var padding = 0
            for offset in 0..<4 {
                let char = chars[index + offset]
                if char == UInt8(ascii: "=") {
                    // Padding only at the end of the last group, at most two.
                    guard index + 4 == chars.count, offset >= 2 else { return nil }
                    padding += 1
                    quad <<= 6
                    continue
                }
                guard padding == 0, let value = sextet(char) else { return nil }
                quad = quad << 6 | UInt32(value)
            }
            values.append(UInt8(quad >> 16 & 0xFF))
            if padding < 2 { values.append(UInt8(quad >> 8 & 0xFF)) }
            if padding < 1 { values.append(UInt8(quad & 0xFF)) }
            index += 4
        }
        guard encode(values) == text else { return nil }
        return values
    }

    private static func sextet(_ char: UInt8) -> UInt8? {
        switch char {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): char - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): char - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): char - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

/// A content digest, `algorithm:hex` (OCI image spec, descriptor digests).
public struct Digest: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    /// Hash algorithms Speedy verifies.
    public enum Algorithm: String, Sendable, Codable {
        case sha256, sha512
        var hexLength: Int { self == .sha256 ? 64 : 128 }
    }

    /// The algorithm.
    public let algorithm: Algorithm
    /// The lower-case hex encoding.
    public let hex: String

    /// Creates a digest from parts already known valid.
    public init(algorithm: Algorithm, hex: String) {
        self.algorithm = algorithm
        self.hex = hex
    }

    /// Parses `sha256:<64 hex>` or `sha512:<128 hex>`; nil for anything else.
    public init?(parsing text: some StringProtocol) {
        guard let colon = text.firstIndex(of: ":"), let algorithm = Algorithm(rawValue: String(text[..<colon])) else { return nil }
        let hex = text[text.index(after: colon)...]
        guard hex.utf8.count == algorithm.hexLength, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }) else {
            return nil
        }
        self.init(algorithm: algorithm, hex: String(hex))
    }

    /// Whether `text` looks like `algorithm:encoded` at all (a digest, not a tag), valid or not.
    public static func looksLikeDigest(_ text: some StringProtocol) -> Bool { text.contains(":") }

    public var description: String { "\(algorithm.rawValue):\(hex)" }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let digest = Digest(parsing: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid digest '\(text)'"))
        }
        self = digest
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Repository names and tags as the OCI Distribution spec defines them.
public enum OCINames {
    /// Longest repository name accepted (clients limit host + name to 255).
    public static let maxRepositoryLength = 255

    /// Whether `name` matches `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
    public static func isValidRepository(_ name: some StringProtocol) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maxRepositoryLength else { return false }
        return String(name).split(separator: "/", omittingEmptySubsequences: false).allSatisfy { isValidComponent($0) }
    }

    private static func isAlnum(_ c: UInt8) -> Bool { (c >= 97 && c <= 122) || (c >= 48 && c <= 57) }

    private static func isValidComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < bytes.count {
            if isAlnum(bytes[i]) {
                i += 1
                continue
            }
            // A separator: ".", "_", "__" or one or more "-", between alphanumerics.
            var j = i
            switch bytes[i] {
            case UInt8(ascii: "."): j += 1
            case UInt8(ascii: "_"): j += (j + 1 < bytes.count && bytes[j + 1] == UInt8(ascii: "_")) ? 2 : 1
            case UInt8(ascii: "-"): while j < bytes.count && bytes[j] == UInt8(ascii: "-") { j += 1 }
            default: return false
            }
            guard j < bytes.count, isAlnum(bytes[j]) else { return false }
            i = j
        }
        return true
    }

    /// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
    public static func isValidTag(_ tag: some StringProtocol) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        func word(_ c: UInt8) -> Bool { isAlnum(c) || (c >= 65 && c <= 90) || c == UInt8(ascii: "_") }
        return word(first) && bytes.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }
}

/// One challenge of a `WWW-Authenticate` header (RFC 9110 11.6.1), as registries send them:
/// `Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`
/// or `Basic realm="Registry"`.
///
/// Only the first challenge of a header is read, with its parameters; a token68 form, or a
/// header that does not parse, is no challenge. The header comes from an upstream registry, so
/// it is parsed with a length cap and without trusting its quoting.
public struct AuthChallenge: Sendable, Equatable {
    /// The longest header read; a longer one is no challenge.
    public static let maximumLength = 4096

    /// The scheme, lowercased (`bearer`, `basic`).
    public var scheme: String
    /// The parameters, names lowercased, values unquoted.
    public var parameters: [String: String]

    /// Creates a challenge from its parts.
    public init(scheme: String, parameters: [String: String] = [:]) {
        self.scheme = scheme.lowercased()
        self.parameters = parameters
    }

    /// Parses the first challenge of `header`; nil when it has none.
    public init?(parsing header: String) {
        guard header.utf8.count <= Self.maximumLength else { return nil }
        var scanner = Scanner(Array(header.utf8))
        scanner.skipSpaces()
        guard let scheme = scanner.token(), !scheme.isEmpty else { return nil }
        var parameters: [String: String] = [:]
        scanner.skipSpaces()
        while !scanner.atEnd {
            let mark = scanner.position
            guard let name = scanner.token(), !name.isEmpty else { return nil }
            scanner.skipSpaces()
            guard scanner.take(UInt8(ascii: "=")) else {
                // The next challenge's scheme: this one ends here.
                scanner.position = mark
                break
            }
            scanner.skipSpaces()
            guard let value = scanner.quoted() ?? scanner.token() else { return nil }
            parameters[name.lowercased()] = value
            scanner.skipSpaces()
            if !scanner.take(UInt8(ascii: ",")) { break }
            scanner.skipSpaces()
        }
        self.init(scheme: scheme, parameters: parameters)
    }

    /// `realm`, the token endpoint of a `Bearer` challenge.
    public var realm: String? { parameters["realm"] }

    /// A byte cursor over the header.
    private struct Scanner {
        let bytes: [UInt8]
        var position = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }

        mutating func skipSpaces() {
            while position < bytes.count, bytes[position] == UInt8(ascii: " ") || bytes[position] == UInt8(ascii: "\t") { position += 1 }
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        /// An RFC 9110 token; nil when none starts here.
        mutating func token() -> String? {
            let start = position
            while position < bytes.count, Self.isTokenByte(bytes[position]) { position += 1 }
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        /// A quoted string, unescaped; nil when none starts here or it never closes.
        mutating func quoted() -> String? {
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
            var index = position + 1
            var value: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    position = index + 1
                    return String(decoding: value, as: UTF8.self)
                }
                if byte == UInt8(ascii: "\\") {
                    index += 1
                    guard index < bytes.count else { return nil }
                }
                value.append(bytes[index])
                index += 1
            }
            return nil
        }

        static func isTokenByte(_ byte: UInt8) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            default: "!#$%&'*+-.^_`|~/:".utf8.contains(byte)
            }
        }
    }
}

/// A `Range: bytes=…` header resolved against content of a known length: RFC 9110 single ranges
/// only, the one parser behind the imageserver's blob GETs and the chunkservers' chunk GETs.
/// Every number is parsed as `UInt64`, so a range past any real length is unsatisfiable or
/// clipped, never an overflow.
public enum ByteRangeRequest {
    /// What a Range header asks of content of a given length.
    public enum Outcome: Equatable, Sendable {
        /// No usable Range header (absent, several ranges, malformed): send everything.
        case whole
        /// Send these bytes, both ends inclusive.
        case partial(ClosedRange<UInt64>)
        /// The range lies outside the content: 416.
        case unsatisfiable
    }

    /// Resolves `header` (nil when absent) against content of `length` bytes.
    public static func resolve(_ header: String?, length: UInt64) -> Outcome {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = trimmed(spec[..<dash])
        let last = trimmed(spec[spec.index(after: dash)...])
        if first.isEmpty {
            guard let suffix = UInt64(last), suffix > 0, length > 0 else { return .unsatisfiable }
            return .partial((length - min(suffix, length))...(length - 1))
        }
        guard let start = UInt64(first) else { return .whole }
        guard start < length else { return .unsatisfiable }
        if last.isEmpty { return .partial(start...(length - 1)) }
        guard let end = UInt64(last), end >= start else { return .whole }
        return .partial(start...min(end, length - 1))
    }

    private static func trimmed(_ text: Substring) -> Substring {
        var text = text
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return text
    }
}

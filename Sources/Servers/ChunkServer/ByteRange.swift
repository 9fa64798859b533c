/// A parsed `Range: bytes=…` header, resolved against a length: RFC 9110 single ranges only.
struct ByteRange: Equatable {
    /// First byte, inclusive.
    var start: Int
    /// Last byte, inclusive.
    var end: Int

    var count: Int { end - start + 1 }

    enum Outcome: Equatable {
        /// No usable Range header: send everything.
        case whole
        /// Send this part.
        case partial(ByteRange)
        /// The range lies outside the content: 416.
        case unsatisfiable
    }

    /// Resolves `header` (nil when absent) against content of `length` bytes.
    static func resolve(_ header: String?, length: Int) -> Outcome {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst(6).trimmingWhitespace()
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash]
        let last = spec[spec.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = Int(last), suffix > 0 else { return .unsatisfiable }
            if length == 0 { return .unsatisfiable }
            return .partial(ByteRange(start: max(0, length - suffix), end: length - 1))
        }
        guard let start = Int(first), start >= 0 else { return .whole }
        guard start < length else { return .unsatisfiable }
        if last.isEmpty { return .partial(ByteRange(start: start, end: length - 1)) }
        guard let end = Int(last), end >= start else { return .whole }
        return .partial(ByteRange(start: start, end: min(end, length - 1)))
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

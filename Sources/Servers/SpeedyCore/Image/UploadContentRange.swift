/// The `Content-Range` of an upload `PATCH` or `PUT`: `<start>-<end>` (inclusive), optionally
/// after `bytes ` and before `/<total>`, as docker, podman and the OCI conformance suite send it.
///
/// Both numbers are decimal digits only (no sign, no spaces inside) of at most 20 digits, and
/// every sum is checked: the header comes from the network, and no value in it may trap.
package struct UploadContentRange: Equatable, Sendable {
    /// Offset of the first byte.
    package let start: UInt64
    /// Offset of the last byte (inclusive).
    package let end: UInt64

    /// Bytes the range covers; nil when the count does not fit in 64 bits (`0-18446744073709551615`).
    package var length: UInt64? {
        let (count, overflow) = (end - start).addingReportingOverflow(1)
        return overflow ? nil : count
    }

    /// Parses a header value; nil when it is not `start-end` with `end >= start`.
    package init?(parsing header: String) {
        var text = Substring(header)
        for prefix in ["bytes ", "bytes="] where text.hasPrefix(prefix) {
            text = text.dropFirst(prefix.count)
        }
        if let slash = text.firstIndex(of: "/") {
            let total = text[text.index(after: slash)...]
            guard total == "*" || Self.number(total) != nil else { return nil }
            text = text[..<slash]
        }
        let bounds = text.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        guard bounds.count == 2, let start = Self.number(bounds[0]), let end = Self.number(bounds[1]), end >= start else { return nil }
        self.start = start
        self.end = end
    }

    /// A decimal number of 1 to 20 ASCII digits that fits in 64 bits.
    private static func number(_ text: Substring) -> UInt64? {
        guard (1...20).contains(text.utf8.count), text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }
}

/// Builds query strings with every reserved character escaped (`+` included, which some servers
/// read as a space).
public enum QueryString {
    /// `?a=1&b=x%2Fy`, skipping nil values; empty when nothing is left.
    public static func make(_ items: [(String, String?)]) -> String {
        let parts = items.compactMap { name, value in value.map { "\(name)=\(escape($0))" } }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }

    /// Percent-escapes everything but unreserved characters (RFC 3986).
    public static func escape(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]], as: UTF8.self)
            }
        }
        return out
    }
}

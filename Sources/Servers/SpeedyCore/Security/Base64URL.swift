import Foundation

/// Base64url without padding (RFC 4648 section 5), strict: a decoded value re-encodes to exactly
/// the text it came from, so no two texts name the same bytes.
package enum Base64URL {
    /// The text of `bytes`.
    package static func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The bytes `text` spells, or nil when it is not canonical base64url.
    package static func decode(_ text: ArraySlice<UInt8>) -> [UInt8]? {
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

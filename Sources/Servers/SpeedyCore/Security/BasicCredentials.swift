import Foundation

/// The user and password of an `Authorization: Basic <base64 of user:password>` header.
package struct BasicCredentials: Sendable, Equatable {
    /// The longest header read; a longer one is refused unread.
    package static let maximumHeaderBytes = 4096

    /// The user name: everything before the first colon.
    package let user: String
    /// The password: everything after the first colon (it may hold colons of its own).
    package let password: String

    /// Parses a whole header value (`Basic …`); nil when it is not `Basic`, is longer than
    /// ``maximumHeaderBytes``, is not base64 of UTF-8, or has no colon.
    package init?(header: String) {
        guard header.utf8.count <= Self.maximumHeaderBytes, header.hasPrefix("Basic "),
            let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
            let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        user = String(text[..<colon])
        password = String(text[text.index(after: colon)...])
    }
}

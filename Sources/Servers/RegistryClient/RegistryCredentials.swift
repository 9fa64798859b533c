import Foundation

/// A user name and password for another registry, read from a file so that it never appears on a
/// command line (where `ps` shows it) or in a log.
public struct RegistryCredentials: Sendable, Equatable {
    /// The user name.
    public var user: String
    /// The password (or an access token the registry takes as one).
    public var password: String

    /// Creates credentials from their parts.
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// Reads `USER:PASSWORD` from the first line of the file at `path`.
    /// - Throws: ``RegistryCredentialsError`` naming the file (never its content).
    public init(file path: String) throws(RegistryCredentialsError) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path) }
        guard data.count <= 8192, let text = String(data: data, encoding: .utf8) else { throw .malformed(path) }
        let line = text.split(separator: "\n", omittingEmptySubsequences: false).first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else { throw .malformed(path) }
        self.init(user: String(line[..<colon]), password: String(line[line.index(after: colon)...]))
    }

    /// The `Authorization` value of HTTP Basic authentication.
    public var basicAuthorization: String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }
}

/// Why a credentials file could not be used.
public enum RegistryCredentialsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is missing or cannot be read.
    case unreadable(String)
    /// The file's first line is not `USER:PASSWORD`.
    case malformed(String)

    public var description: String {
        switch self {
        case .unreadable(let path): "cannot read the credentials file \(path)"
        case .malformed(let path): "the credentials file \(path) does not start with a USER:PASSWORD line"
        }
    }
}

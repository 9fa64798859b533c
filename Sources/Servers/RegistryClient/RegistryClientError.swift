/// Why a request to another registry failed: one case per way it can, so a caller decides
/// (serve a cached copy, answer 404, retry) without reading messages.
public enum RegistryClientError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The registry has no such repository, manifest, tag or blob (404).
    case notFound(String)
    /// The registry refused our credentials, or wants some we do not have (401, 403).
    case denied(String)
    /// The registry asks us to slow down (429).
    case rateLimited(String)
    /// The registry cannot be reached, did not answer in time, or failed (5xx).
    case unavailable(String)
    /// The registry answered something we cannot use: an unexpected status, a body over its
    /// limit, a digest that is not the content's.
    case invalidAnswer(String)

    public var description: String {
        switch self {
        case .notFound(let what): "not found: \(what)"
        case .denied(let what): "denied: \(what)"
        case .rateLimited(let what): "rate-limited: \(what)"
        case .unavailable(let what): "unavailable: \(what)"
        case .invalidAnswer(let what): "invalid answer: \(what)"
        }
    }

    /// Whether the registry was unreachable or in trouble (not an answer about the content):
    /// the case in which a cache serves what it has.
    public var isOutage: Bool {
        switch self {
        case .unavailable, .rateLimited: true
        case .notFound, .denied, .invalidAnswer: false
        }
    }

    /// The error for an answer with `status` to `what`, or nil for a success.
    static func forStatus(_ status: UInt, _ what: String) -> RegistryClientError? {
        switch status {
        case 200..<300: nil
        case 404: .notFound(what)
        case 401, 403: .denied("\(what) (\(status))")
        case 429: .rateLimited(what)
        case 500..<600: .unavailable("\(what) answered \(status)")
        default: .invalidAnswer("\(what) answered \(status)")
        }
    }
}

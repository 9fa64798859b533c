/// Why the agent could not do something.
public enum PeerError: Error, Sendable, CustomStringConvertible {
    /// The cache directory could not be prepared or written.
    case cache(String)
    /// A blob's bytes did not hash to its digest, or were not as long as announced.
    case digestMismatch(expected: String, got: String)
    /// No member served a chunk and the registry did not serve the rest of the blob either.
    case blobUnavailable(String)
    /// The registry could not be reached or answered something unusable.
    case registry(String)
    /// The agent cannot start as configured (an unreadable `--ca`, a bad flag value).
    case configuration(String)

    /// A one-line account of the error, for logs and start-up failures.
    public var description: String {
        switch self {
        case .cache(let reason): "cache: \(reason)"
        case .digestMismatch(let expected, let got): "blob \(expected) arrived as \(got): not served, not cached"
        case .blobUnavailable(let reason): "blob unavailable: \(reason)"
        case .registry(let reason): "registry: \(reason)"
        case .configuration(let reason): "configuration: \(reason)"
        }
    }
}

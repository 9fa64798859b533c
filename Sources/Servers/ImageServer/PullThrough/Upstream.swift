import RegistryClient
import SpeedyCore

/// A registry this imageserver stands in front of as a pull-through cache: repositories named
/// `PREFIX/REST` are the upstream's `REST`, fetched on a miss and served from the cluster after.
public struct Upstream: Sendable {
    /// The first component(s) of the repositories that come from this upstream (`hub`).
    public var prefix: String
    /// The upstream's base URL (`https://registry-1.docker.io`).
    public var url: String
    /// Its login and TLS trust.
    public var options: RegistryClient.Options
    /// How long a tag served from the cache goes before it is checked against the upstream again.
    public var tagTTL: Duration

    /// An upstream serving `PREFIX/…` from `url`.
    public init(prefix: String, url: String, options: RegistryClient.Options = .init(), tagTTL: Duration = .seconds(300)) {
        self.prefix = prefix
        self.url = url
        self.options = options
        self.tagTTL = tagTTL
    }

    /// The upstream's name for local repository `repository`, when it lies under ``prefix``.
    public func remoteName(of repository: String) -> String? {
        guard repository.hasPrefix(prefix + "/") else { return nil }
        let rest = String(repository.dropFirst(prefix.count + 1))
        return rest.isEmpty ? nil : rest
    }

    /// Whether `prefix` can name repositories: one or more path components of the OCI grammar.
    public static func isValidPrefix(_ prefix: String) -> Bool {
        OCINames.isValidRepository(prefix)
    }
}

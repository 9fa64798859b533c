import Hummingbird

/// A request's path as Hummingbird's trie router matches it, for every guard that decides by
/// path: a guard that compared `request.uri.path` literally let `//metrics` or `/metrics/` through
/// to the handler of `/metrics`.
///
/// The router (Hummingbird 2, `RouterTrie.resolve`) splits the raw path on `/` and skips empty
/// pieces, and does nothing else: no percent-decoding (`/%6Detrics` is not `/metrics`), no dot
/// segments (`/./metrics` and `/x/../metrics` route nowhere), case kept. This does the same, on
/// the same `Character`s, so a guard sees exactly the route a request will reach.
public enum RoutedPath {
    /// `path` as the router matches it: `/` and its non-empty pieces (`//v1//servers/` is
    /// `/v1/servers`, an empty path is `/`).
    public static func of(_ path: String) -> String {
        "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
    }

    /// Whether `routed` (a result of ``of(_:)``) is `root` or lies below it: `/v2`, `/v2/x`, not `/v2x`.
    public static func isWithin(_ routed: String, _ root: String) -> Bool {
        routed == root || routed.hasPrefix(root + "/")
    }
}

extension Request {
    /// This request's path as the router matches it (see ``RoutedPath``); guards decide by this,
    /// never by `uri.path` itself.
    public var routedPath: String { RoutedPath.of(uri.path) }
}

import ArgumentParser
import CommandLineSupport
import Foundation
import ImageServer
import RegistryClient
import SpeedyCore

/// The imageserver's pull-through cache options: which repositories come from which upstream
/// registry, with its login and CA (docs/registry.md "Pull-through cache").
struct UpstreamOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Cache an upstream registry: PREFIX/NAME pulls NAME from URL on a miss, e.g. hub=https://registry-1.docker.io (repeat for several). Pushes under PREFIX are refused.",
            valueName: "prefix=url"))
    var upstream: [String] = []

    @Option(
        help: ArgumentHelp(
            "The login for an upstream: a file whose first line is USER:PASSWORD (never on the command line), e.g. hub=/etc/speedy/hub-login.",
            valueName: "prefix=path"))
    var upstreamCredentials: [String] = []

    @Option(help: ArgumentHelp("The PEM CA an upstream's certificate is signed by (default: the system's roots).", valueName: "prefix=path"))
    var upstreamCa: [String] = []

    @Option(help: ArgumentHelp("How long a cached tag is served before it is checked against its upstream again, e.g. 5m.", valueName: "duration"))
    var upstreamTagTtl = DurationArgument(.seconds(300))

    /// The upstreams the options name.
    /// - Throws: `ValidationError` naming the option and value at fault (never a file's content).
    func upstreams() throws -> [Upstream] {
        let urls = try Self.pairs(upstream, option: "--upstream")
        let credentials = try Self.pairs(upstreamCredentials, option: "--upstream-credentials")
        let authorities = try Self.pairs(upstreamCa, option: "--upstream-ca")
        for prefix in Set(credentials.keys).union(authorities.keys) where urls[prefix] == nil {
            throw ValidationError("'\(prefix)' has a login or CA but no --upstream \(prefix)=URL")
        }
        guard upstreamTagTtl.duration >= .seconds(1) else { throw ValidationError("--upstream-tag-ttl must be at least 1s") }
        return try urls.keys.sorted().map { prefix in
            guard Upstream.isValidPrefix(prefix) else {
                throw ValidationError("--upstream: '\(prefix.prefix(100))' is not a repository prefix (lower case letters, digits, separators)")
            }
            let url = urls[prefix]!
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil,
                parsed.user == nil, parsed.password == nil
            else {
                throw ValidationError("--upstream \(prefix): '\(url.prefix(200))' is not an http(s) URL without a login in it (use --upstream-credentials)")
            }
            var options = RegistryClient.Options()
            if let path = credentials[prefix] {
                do {
                    options.credentials = try RegistryCredentials(file: path)
                } catch {
                    throw ValidationError("--upstream-credentials \(prefix): \(error)")
                }
            }
            options.caFile = authorities[prefix]
            return Upstream(prefix: prefix, url: url, options: options, tagTTL: upstreamTagTtl.duration)
        }
    }

    /// The same options, for an imageserver `speedy up` starts.
    var arguments: [String] {
        upstream.flatMap { ["--upstream", $0] } + upstreamCredentials.flatMap { ["--upstream-credentials", $0] }
            + upstreamCa.flatMap { ["--upstream-ca", $0] } + ["--upstream-tag-ttl", DurationText.format(upstreamTagTtl.duration)]
    }

    /// `PREFIX=VALUE` arguments by prefix; each prefix at most once.
    static func pairs(_ arguments: [String], option: String) throws -> [String: String] {
        var pairs: [String: String] = [:]
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex, argument.index(after: equals) != argument.endIndex else {
                throw ValidationError("\(option) takes PREFIX=VALUE, got '\(argument.prefix(200))'")
            }
            let prefix = String(argument[..<equals])
            guard pairs[prefix] == nil else { throw ValidationError("\(option) names '\(prefix.prefix(100))' twice") }
            pairs[prefix] = String(argument[argument.index(after: equals)...])
        }
        return pairs
    }
}

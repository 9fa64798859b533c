import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyCore

/// How a ``RegistryClient`` logs in to its registry: the `Authorization` each request carries,
/// learnt from the registry's `401` challenges, and the bearer tokens it was given, kept per scope
/// until shortly before they expire.
actor RegistryLogin {
    /// The longest token answer read.
    static let maximumTokenAnswer = 64 << 10
    /// Tokens are renewed this long before the registry said they expire.
    static let renewalMargin: Duration = .seconds(10)

    private let credentials: RegistryCredentials?
    /// Whether the registry's URL is `https`: credentials go to a token endpoint only over TLS then.
    private let secure: Bool
    private var tokens: [String: (value: String, renewAt: ContinuousClock.Instant)] = [:]
    /// The registry asked for Basic: every request carries the credentials from then on.
    private var usesBasic = false

    init(credentials: RegistryCredentials?, secure: Bool) {
        self.credentials = credentials
        self.secure = secure
    }

    /// What a request for `scope` carries now; nil before the registry asked for anything.
    func authorization(scope: String) -> String? {
        if usesBasic { return credentials?.basicAuthorization }
        guard let token = tokens[scope], ContinuousClock.now < token.renewAt else { return nil }
        return "Bearer " + token.value
    }

    /// Answers `challenge` (from a `401` to a request for `scope`): the `Authorization` to retry
    /// with, or nil when there is nothing better to send (no credentials for Basic, an unknown
    /// scheme).
    func respond(to challenge: AuthChallenge, scope: String, http: HTTPClient, timeout: Duration) async throws(RegistryClientError)
        -> String?
    {
        switch challenge.scheme {
        case "basic":
            guard let credentials else { return nil }
            usesBasic = true
            return credentials.basicAuthorization
        case "bearer":
            guard let realm = challenge.realm else { throw .invalidAnswer("a Bearer challenge without a realm") }
            let token = try await fetchToken(realm: realm, service: challenge.parameters["service"], scope: challenge.parameters["scope"] ?? scope, http: http, timeout: timeout)
            keep(token.value, for: scope, until: ContinuousClock.now + token.lifetime - Self.renewalMargin)
            return "Bearer " + token.value
        default:
            return nil
        }
    }

    /// The most tokens kept: clients naming ever new repositories must not grow the table for ever.
    static let maximumTokens = 10_000

    private func keep(_ token: String, for scope: String, until renewAt: ContinuousClock.Instant) {
        if tokens.count >= Self.maximumTokens {
            let now = ContinuousClock.now
            tokens = tokens.filter { $0.value.renewAt > now }
            // Still full of live tokens: drop any half; they are fetched again when needed.
            if tokens.count >= Self.maximumTokens { tokens = Dictionary(uniqueKeysWithValues: tokens.prefix(Self.maximumTokens / 2).map { ($0.key, $0.value) }) }
        }
        tokens[scope] = (token, renewAt)
    }

    /// The token answer of a registry's token endpoint (the Docker token specification; OAuth's
    /// `access_token` is taken too).
    private struct TokenAnswer: Decodable {
        var token: String?
        var access_token: String?
        var expires_in: Int?
    }

    private func fetchToken(realm: String, service: String?, scope: String, http: HTTPClient, timeout: Duration) async throws(RegistryClientError)
        -> (value: String, lifetime: Duration)
    {
        guard var components = URLComponents(string: realm), let scheme = components.scheme?.lowercased(), scheme == "https" || scheme == "http" else {
            throw .invalidAnswer("the token realm '\(realm.prefix(200))' is not an http(s) URL")
        }
        var query = components.queryItems ?? []
        if let service { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = query
        guard let url = components.string else { throw .invalidAnswer("the token realm '\(realm.prefix(200))' is not a URL") }
        var request = HTTPClientRequest(url: url)
        // Credentials never leave TLS for a registry reached over TLS.
        if let credentials, scheme == "https" || !secure { request.headers.add(name: "Authorization", value: credentials.basicAuthorization) }
        request.headers.add(name: "User-Agent", value: RegistryClient.userAgent)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .milliseconds(timeout.milliseconds))
        } catch {
            throw .unavailable("the token endpoint: \(error)")
        }
        if let error = RegistryClientError.forStatus(response.status.code, "the token endpoint") { throw error }
        let body = try await RegistryClient.collect(response, limit: Self.maximumTokenAnswer, within: timeout, what: "the token endpoint's answer")
        guard let answer = try? JSONDecoder().decode(TokenAnswer.self, from: body), let value = answer.token ?? answer.access_token, !value.isEmpty else {
            throw .invalidAnswer("the token endpoint's answer holds no token")
        }
        // The specification's default is 60 s; a token is kept at most an hour.
        let seconds = min(max(answer.expires_in ?? 60, 20), 3600)
        return (value, .seconds(seconds))
    }
}

extension Duration {
    /// Whole milliseconds, for APIs that take them.
    var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

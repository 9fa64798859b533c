import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SpeedyCore

/// A client of another registry's OCI Distribution API: what a pull-through cache asks its
/// upstream, and what replication reads from or writes to.
///
/// It logs in as the registry asks (``RegistryLogin``: Basic, or bearer tokens per scope), trusts
/// a private CA when given one, and checks every manifest's digest before handing it over. Blob
/// bodies are handed over as they stream; the caller checks their digest (it hashes them anyway
/// on the way to storage). Redirects of blob GETs (to a CDN) are followed without credentials
/// when they leave the registry's host.
public struct RegistryClient: Sendable {
    /// How to reach the registry.
    public struct Options: Sendable {
        /// Credentials, when the registry wants a login.
        public var credentials: RegistryCredentials?
        /// The PEM file of the CA the registry's certificate is signed by (nil: the system's roots).
        public var caFile: String?
        /// How long the registry may take to answer a request's head.
        public var timeout: Duration
        /// How long a body may stall before it fails.
        public var readIdle: Duration
        /// The largest manifest taken.
        public var maximumManifestBytes: Int

        /// Options with the defaults: no login, the system's roots, 30 s for a head, 60 s of
        /// silence in a body, manifests up to 4 MiB.
        public init(
            credentials: RegistryCredentials? = nil, caFile: String? = nil, timeout: Duration = .seconds(30), readIdle: Duration = .seconds(60),
            maximumManifestBytes: Int = 4 << 20
        ) {
            self.credentials = credentials
            self.caFile = caFile
            self.timeout = timeout
            self.readIdle = readIdle
            self.maximumManifestBytes = maximumManifestBytes
        }
    }

    /// A manifest as the registry sent it, its digest checked.
    public struct Manifest: Sendable {
        /// The exact bytes.
        public var content: [UInt8]
        /// Its `Content-Type`.
        public var mediaType: String
        /// The digest of ``content``.
        public var digest: Digest
    }

    /// A blob's answer: its length, when the registry said it, and the body still streaming.
    public struct Blob: Sendable {
        /// `Content-Length`, when the registry sent one.
        public var size: UInt64?
        /// The bytes, as they arrive; they fail when the body stalls past ``Options/readIdle``.
        public var body: HTTPClientResponse.Body
    }

    /// The manifest media types asked for, newest first.
    public static let manifestMediaTypes = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json", "application/vnd.docker.distribution.manifest.v2+json",
    ]
    static let userAgent = "speedy/\(SpeedyVersion.current)"
    static let maximumRedirects = 5

    /// The registry's base URL, without a trailing slash (`https://registry.example:5000`).
    public let baseURL: String
    let options: Options
    let http: HTTPClient
    let login: RegistryLogin

    /// A client of the registry at `baseURL`.
    /// - Throws: ``RegistryClientError/invalidAnswer(_:)`` when `baseURL` is not an http(s) URL;
    ///   ``RegistryClientError/unavailable(_:)`` when the CA file cannot be read.
    public init(baseURL: String, options: Options = Options()) throws(RegistryClientError) {
        let trimmed = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        guard let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
            throw .invalidAnswer("'\(baseURL.prefix(200))' is not an http(s) URL")
        }
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.decompression = .disabled
        configuration.timeout = .init(connect: .seconds(5), read: .milliseconds(options.readIdle.milliseconds))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 32
        if let caFile = options.caFile {
            guard FileManager.default.isReadableFile(atPath: caFile) else { throw .unavailable("cannot read the CA file \(caFile)") }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.trustRoots = .file(caFile)
            configuration.tlsConfiguration = tls
        }
        self.baseURL = trimmed
        self.options = options
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.login = RegistryLogin(credentials: options.credentials, secure: scheme == "https")
    }

    /// Ends the client's connections.
    public func shutdown() async {
        try? await http.shutdown()
    }

    /// `GET /v2/<repository>/manifests/<reference>`: the manifest, its digest checked against
    /// the content (and against `reference` when that is a digest, and the registry's
    /// `Docker-Content-Digest` when it sends one).
    public func manifest(_ repository: String, reference: String) async throws(RegistryClientError) -> Manifest {
        let what = "manifest \(repository):\(reference)"
        let response = try await send(.GET, "/v2/\(repository)/manifests/\(reference)", scope: Self.pullScope(repository), accept: Self.manifestMediaTypes)
        try await check(response, what)
        let body = try await collect(response, limit: options.maximumManifestBytes, what: what)
        let content = Array(body.readableBytesView)
        let requested = Digest(parsing: reference)
        let digest = Digest.of(content, algorithm: requested?.algorithm ?? .sha256)
        if let requested, requested != digest { throw .invalidAnswer("\(what) has digest \(digest)") }
        if let sent = response.headers.first(name: "Docker-Content-Digest").flatMap(Digest.init(parsing:)), sent.algorithm == digest.algorithm, sent != digest {
            throw .invalidAnswer("\(what) says its digest is \(sent) but its content's is \(digest)")
        }
        let mediaType = response.headers.first(name: "Content-Type") ?? ""
        return Manifest(content: content, mediaType: mediaType, digest: digest)
    }

    /// `HEAD /v2/<repository>/manifests/<reference>`: the digest the registry says the reference
    /// names now; nil when it answers without `Docker-Content-Digest`.
    public func manifestDigest(_ repository: String, reference: String) async throws(RegistryClientError) -> Digest? {
        let response = try await send(.HEAD, "/v2/\(repository)/manifests/\(reference)", scope: Self.pullScope(repository), accept: Self.manifestMediaTypes)
        try await check(response, "manifest \(repository):\(reference)")
        return response.headers.first(name: "Docker-Content-Digest").flatMap(Digest.init(parsing:))
    }

    /// `GET /v2/<repository>/blobs/<digest>`, following redirects: the body as it streams. The
    /// caller checks the digest of what it reads.
    public func blob(_ repository: String, digest: Digest) async throws(RegistryClientError) -> Blob {
        let what = "blob \(digest) of \(repository)"
        var response = try await send(.GET, "/v2/\(repository)/blobs/\(digest)", scope: Self.pullScope(repository))
        var url = baseURL + "/v2/\(repository)/blobs/\(digest)"
        var hops = 0
        while [301, 302, 303, 307, 308].contains(response.status.code) {
            guard hops < Self.maximumRedirects, let location = response.headers.first(name: "Location"),
                let next = URL(string: location, relativeTo: URL(string: url))?.absoluteURL.absoluteString
            else { throw .invalidAnswer("\(what): a redirect without a usable Location, or more than \(Self.maximumRedirects)") }
            await drain(response)
            hops += 1
            url = next
            response = try await redirected(to: next, repository: repository)
        }
        try await check(response, what)
        let size = response.headers.first(name: "Content-Length").flatMap { UInt64($0) }
        if let size, size > UInt64(Int64.max) { throw .invalidAnswer("\(what) says it is \(size) bytes long") }
        return Blob(size: size, body: response.body)
    }

    // MARK: Requests

    /// The scope a read of `repository` needs.
    static func pullScope(_ repository: String) -> String { "repository:\(repository):pull" }
    /// The scope a write to `repository` needs.
    static func pushScope(_ repository: String) -> String { "repository:\(repository):pull,push" }

    /// The absolute URL of `target`: a path on the registry, or an absolute URL it sent (an
    /// upload's `Location`).
    func url(_ target: String) -> String {
        if target.hasPrefix("http://") || target.hasPrefix("https://") { return target }
        if target.hasPrefix("/") { return baseURL + target }
        return URL(string: target, relativeTo: URL(string: baseURL + "/"))?.absoluteURL.absoluteString ?? baseURL + "/" + target
    }

    /// Sends a request to the registry with what the login has for `scope`; a `401` is
    /// answered once (a token fetched, or Basic credentials) and the request sent again, body and
    /// all (so `body` is whole bytes, never a stream).
    func send(
        _ method: HTTPMethod, _ path: String, scope: String, accept: [String] = [], headers: [(String, String)] = [], body: ByteBuffer? = nil
    ) async throws(RegistryClientError) -> HTTPClientResponse {
        var authorization = await login.authorization(scope: scope)
        for attempt in 0..<2 {
            let target = url(path)
            var request = HTTPClientRequest(url: target)
            request.method = method
            request.headers.add(name: "User-Agent", value: Self.userAgent)
            if !accept.isEmpty { request.headers.add(name: "Accept", value: accept.joined(separator: ", ")) }
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            // A URL the registry named (a page link, an upload's Location) gets the login only on the registry's own origin.
            if let authorization, isOwnOrigin(target) { request.headers.add(name: "Authorization", value: authorization) }
            if let body { request.body = .bytes(body) }
            let response = try await execute(request, "\(method) \(path)")
            guard response.status == .unauthorized, attempt == 0 else { return response }
            let challenge = response.headers["WWW-Authenticate"].lazy.compactMap(AuthChallenge.init(parsing:)).first
            await drain(response)
            guard let challenge, let next = try await login.respond(to: challenge, scope: scope, http: http, timeout: options.timeout) else {
                throw .denied("\(method) \(path): the registry wants a login" + (options.credentials == nil ? " and no credentials are configured" : ""))
            }
            authorization = next
        }
        throw .denied("\(method) \(path): the registry refused the login")
    }

    /// A redirect's GET: the credentials go along only to the registry's own host.
    private func redirected(to url: String, repository: String) async throws(RegistryClientError) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        if isOwnOrigin(url), let authorization = await login.authorization(scope: Self.pullScope(repository)) {
            request.headers.add(name: "Authorization", value: authorization)
        }
        return try await execute(request, "GET \(Self.withoutQuery(url))")
    }

    /// Whether `url` has the registry's scheme, host and port: the only place its login goes.
    func isOwnOrigin(_ url: String) -> Bool {
        guard let target = URL(string: url), let base = URL(string: baseURL) else { return false }
        return target.scheme?.lowercased() == base.scheme?.lowercased() && target.host?.lowercased() == base.host?.lowercased()
            && target.port == base.port
    }

    /// `url` without its query, for messages: a CDN's signed query is a credential of sorts.
    static func withoutQuery(_ url: String) -> String {
        String(url.prefix { $0 != "?" }.prefix(200))
    }

    /// Reads a whole body of at most `limit` bytes within ``Options/timeout``: a body that
    /// trickles in (a byte before each read limit) cannot hold its caller for longer.
    func collect(_ response: HTTPClientResponse, limit: Int, what: String) async throws(RegistryClientError) -> ByteBuffer {
        try await Self.collect(response, limit: limit, within: options.timeout, what: what)
    }

    /// Reads a whole body of at most `limit` bytes within `timeout`.
    static func collect(_ response: HTTPClientResponse, limit: Int, within timeout: Duration, what: String) async throws(RegistryClientError)
        -> ByteBuffer
    {
        do {
            return try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
                group.addTask { try await response.body.collect(upTo: limit) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let body = first else {
                    throw RegistryClientError.unavailable("\(what) did not arrive within \(timeout)")
                }
                return body
            }
        } catch let error as RegistryClientError {
            throw error
        } catch is NIOTooManyBytesError {
            throw .invalidAnswer("\(what) is over \(limit) bytes")
        } catch {
            throw .unavailable("reading \(what): \(error)")
        }
    }

    func execute(_ request: HTTPClientRequest, _ what: String) async throws(RegistryClientError) -> HTTPClientResponse {
        do {
            return try await http.execute(request, timeout: .milliseconds(options.timeout.milliseconds))
        } catch {
            throw .unavailable("\(what): \(error)")
        }
    }

    /// Throws the error `response`'s status stands for, its body read and dropped.
    func check(_ response: HTTPClientResponse, _ what: String) async throws(RegistryClientError) {
        guard let error = RegistryClientError.forStatus(response.status.code, what) else { return }
        await drain(response)
        throw error
    }

    /// Reads and drops a small body, so its connection can serve the next request.
    func drain(_ response: HTTPClientResponse) async {
        _ = try? await response.body.collect(upTo: 1 << 20)
    }
}

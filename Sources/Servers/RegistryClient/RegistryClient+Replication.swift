import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyCore

/// What replication asks of a registry beyond a pull: listings, existence checks, referrers, and
/// pushes of blobs and manifests.
extension RegistryClient {
    /// The most names a listing gathers across its pages.
    public static let maximumListed = 100_000

    /// Every repository of the registry's catalog (`GET /v2/_catalog`, page by page).
    public func repositories() async throws(RegistryClientError) -> [String] {
        struct Catalog: Decodable { var repositories: [String]? }
        return try await pages("/v2/_catalog?n=1000", scope: "registry:catalog:*", what: "the catalog") { (page: Catalog) in page.repositories ?? [] }
    }

    /// Every tag of `repository` (`GET /v2/<name>/tags/list`, page by page).
    /// - Throws: ``RegistryClientError/notFound(_:)`` when the registry does not know the
    ///   repository (its first page is a 404; a later page's 404 is a failure like any).
    public func tags(_ repository: String) async throws(RegistryClientError) -> [String] {
        struct TagList: Decodable { var tags: [String]? }
        return try await pages("/v2/\(repository)/tags/list?n=1000", scope: Self.pullScope(repository), what: "tags of \(repository)") {
            (page: TagList) in page.tags ?? []
        }
    }

    /// Whether the registry has blob `digest` in `repository` (`HEAD`).
    public func hasBlob(_ repository: String, digest: Digest) async throws(RegistryClientError) -> Bool {
        let response = try await send(.HEAD, "/v2/\(repository)/blobs/\(digest)", scope: Self.pullScope(repository))
        if response.status.code == 404 { return false }
        try await check(response, "blob \(digest) of \(repository)")
        return true
    }

    /// The manifests whose subject is `digest` (`GET /v2/<name>/referrers/<digest>`); nil when the
    /// registry has no referrers API (it answers 404 for the route, as registries before OCI 1.1).
    public func referrers(_ repository: String, of digest: Digest) async throws(RegistryClientError) -> [Descriptor]? {
        struct Index: Decodable { var manifests: [Descriptor]? }
        var found: [Descriptor] = []
        var next: String? = "/v2/\(repository)/referrers/\(digest)"
        var seen: Set<String> = []
        while let target = next, seen.insert(target).inserted, seen.count <= Self.maximumPages {
            let response = try await send(.GET, target, scope: Self.pullScope(repository))
            // No such route (a registry before OCI 1.1): its answer is an error or a page, not an index.
            if found.isEmpty, response.status.code == 404 || response.status.code == 405
                || (response.status.code == 200 && !(response.headers.first(name: "Content-Type") ?? "").contains("json"))
            {
                await drain(response)
                return nil
            }
            try await check(response, "referrers of \(digest)")
            next = Self.nextPage(response.headers["Link"])
            let index: Index = try await decode(response, what: "referrers of \(digest)")
            found += index.manifests ?? []
            guard found.count <= Self.maximumListed else { throw .invalidAnswer("over \(Self.maximumListed) referrers of \(digest)") }
        }
        return found
    }

    /// Pushes a blob of `size` bytes streamed from `body` into `repository`: a session
    /// (`POST …/uploads/`), then the whole body in one `PUT …?digest=`. The registry checks the
    /// digest; a body that is not `size` bytes long fails the push.
    public func pushBlob<Body: AsyncSequence & Sendable>(_ repository: String, digest: Digest, size: UInt64, body: Body)
        async throws(RegistryClientError) where Body.Element == ByteBuffer
    {
        let what = "push of blob \(digest) to \(repository)"
        // The session's POST has no body: the login for the push scope is settled there, so the
        // streamed PUT (which cannot be sent twice) goes with it.
        let started = try await send(.POST, "/v2/\(repository)/blobs/uploads/", scope: Self.pushScope(repository), headers: [("Content-Length", "0")])
        try await check(started, what)
        await drain(started)
        guard let location = started.headers.first(name: "Location") else { throw .invalidAnswer("\(what): no Location for the upload") }
        let target = url(location) + (location.contains("?") ? "&" : "?") + "digest=\(digest)"
        var request = HTTPClientRequest(url: target)
        request.method = .PUT
        request.headers.add(name: "User-Agent", value: Self.userAgent)
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        if isOwnOrigin(target), let authorization = await login.authorization(scope: Self.pushScope(repository)) {
            request.headers.add(name: "Authorization", value: authorization)
        }
        guard size <= UInt64(Int64.max) else { throw .invalidAnswer("\(what): \(size) bytes") }
        request.body = .stream(body, length: .known(Int64(size)))
        // The answer comes once the whole body is sent: the deadline grows with the blob (at
        // least 64 KiB a second), where the request timeout would cut any long upload.
        let deadline = options.timeout + .seconds(Int64(size / (64 << 10)))
        let finished: HTTPClientResponse
        do {
            finished = try await http.execute(request, timeout: .milliseconds(deadline.milliseconds))
        } catch {
            throw .unavailable("\(what): \(error)")
        }
        try await check(finished, what)
        await drain(finished)
    }

    /// Pushes manifest `content` under `reference` (a tag, or its digest) with `mediaType`.
    public func putManifest(_ repository: String, reference: String, content: [UInt8], mediaType: String) async throws(RegistryClientError) {
        let what = "push of manifest \(repository):\(reference)"
        let response = try await send(
            .PUT, "/v2/\(repository)/manifests/\(reference)", scope: Self.pushScope(repository), headers: [("Content-Type", mediaType)],
            body: ByteBuffer(bytes: content))
        try await check(response, what)
        await drain(response)
    }

    /// Deletes tag `tag` of `repository`. Registries that delete manifests only by digest answer
    /// `UNSUPPORTED`: ``RegistryClientError/invalidAnswer(_:)``.
    public func deleteTag(_ repository: String, tag: String) async throws(RegistryClientError) {
        let response = try await send(.DELETE, "/v2/\(repository)/manifests/\(tag)", scope: "repository:\(repository):delete")
        try await check(response, "delete of \(repository):\(tag)")
        await drain(response)
    }

    // MARK: Listing pages

    /// The most pages a listing follows.
    public static let maximumPages = 1000

    /// Follows `Link: <…>; rel="next"` from `first`, gathering what `names` takes from each page;
    /// an empty page, a link already followed or ``maximumPages`` pages end it.
    private func pages<Page: Decodable>(_ first: String, scope: String, what: String, _ names: (Page) -> [String]) async throws(RegistryClientError)
        -> [String]
    {
        var gathered: [String] = []
        var next: String? = first
        var seen: Set<String> = []
        while let target = next, seen.insert(target).inserted {
            guard seen.count <= Self.maximumPages else { throw .invalidAnswer("\(what) goes on for over \(Self.maximumPages) pages") }
            let response = try await send(.GET, target, scope: scope)
            try await check(response, what)
            next = Self.nextPage(response.headers["Link"])
            let page: Page = try await decode(response, what: what)
            let found = names(page)
            gathered += found
            guard gathered.count <= Self.maximumListed else { throw .invalidAnswer("\(what) lists over \(Self.maximumListed) names") }
            if found.isEmpty { break }
        }
        return gathered
    }

    /// The target of the `Link` value with `rel="next"` among `links` (each header may list
    /// several, comma-separated), if any.
    static func nextPage(_ links: [String]) -> String? {
        for header in links {
            for value in header.split(separator: ",") {
                let parts = value.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let first = parts.first, first.hasPrefix("<"), first.hasSuffix(">"),
                    parts.dropFirst().contains(where: { $0.lowercased() == "rel=\"next\"" || $0.lowercased() == "rel=next" })
                else { continue }
                let target = String(first.dropFirst().dropLast())
                if !target.isEmpty { return target }
            }
        }
        return nil
    }

    private func decode<T: Decodable>(_ response: HTTPClientResponse, what: String) async throws(RegistryClientError) -> T {
        let body = try await collect(response, limit: 16 << 20, what: what)
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            throw .invalidAnswer("\(what) is not the JSON expected: \(error)")
        }
    }
}

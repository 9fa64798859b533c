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

    /// Every tag of `repository` (`GET /v2/<name>/tags/list`, page by page); none when the
    /// registry does not know the repository.
    public func tags(_ repository: String) async throws(RegistryClientError) -> [String] {
        struct TagList: Decodable { var tags: [String]? }
        do {
            return try await pages("/v2/\(repository)/tags/list?n=1000", scope: Self.pullScope(repository), what: "tags of \(repository)") {
                (page: TagList) in page.tags ?? []
            }
        } catch .notFound {
            return []
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
        let response = try await send(.GET, "/v2/\(repository)/referrers/\(digest)", scope: Self.pullScope(repository))
        if response.status.code == 404 || response.status.code == 405 {
            await drain(response)
            return nil
        }
        try await check(response, "referrers of \(digest)")
        guard (response.headers.first(name: "Content-Type") ?? "").contains("json") else {
            await drain(response)
            return nil
        }
        let index: Index = try await decode(response, what: "referrers of \(digest)")
        return index.manifests ?? []
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
        if let authorization = await login.authorization(scope: Self.pushScope(repository)) {
            request.headers.add(name: "Authorization", value: authorization)
        }
        guard size <= UInt64(Int64.max) else { throw .invalidAnswer("\(what): \(size) bytes") }
        request.body = .stream(body, length: .known(Int64(size)))
        let finished = try await execute(request, what)
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

    /// Follows `Link: <…>; rel="next"` from `first`, gathering what `names` takes from each page.
    private func pages<Page: Decodable>(_ first: String, scope: String, what: String, _ names: (Page) -> [String]) async throws(RegistryClientError)
        -> [String]
    {
        var gathered: [String] = []
        var next: String? = first
        while let target = next {
            let response = try await send(.GET, target, scope: scope)
            try await check(response, what)
            next = Self.nextPage(response.headers.first(name: "Link"))
            let page: Page = try await decode(response, what: what)
            gathered += names(page)
            guard gathered.count <= Self.maximumListed else { throw .invalidAnswer("\(what) lists over \(Self.maximumListed) names") }
        }
        return gathered
    }

    /// The target of a `Link` header's `rel="next"`, if any.
    static func nextPage(_ link: String?) -> String? {
        guard let link, link.contains("rel=\"next\"") || link.contains("rel=next"),
            let open = link.firstIndex(of: "<"), let close = link[open...].firstIndex(of: ">")
        else { return nil }
        let target = String(link[link.index(after: open)..<close])
        return target.isEmpty ? nil : target
    }

    private func decode<T: Decodable>(_ response: HTTPClientResponse, what: String) async throws(RegistryClientError) -> T {
        let body: ByteBuffer
        do {
            body = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw .unavailable("reading \(what): \(error)")
        }
        do {
            return try JSONDecoder().decode(T.self, from: body)
        } catch {
            throw .invalidAnswer("\(what) is not the JSON expected: \(error)")
        }
    }
}

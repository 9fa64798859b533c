import HTTPTypes
import Hummingbird
import NIOCore
import ServerSupport
import SpeedyCore

extension RegistryAPI {
    private struct TagList: Encodable {
        var name: String
        var tags: [String]
    }

    private struct Catalog: Encodable {
        var repositories: [String]
    }

    private struct Index: Encodable {
        var schemaVersion = 2
        var mediaType = ManifestParser.ociIndex
        var manifests: [Descriptor]
    }

    /// Largest page served when the client gives no `n`.
    static let defaultPage = 1000
    /// Largest page served whatever `n` asks for.
    static let largestPage = 10_000

    /// `n` and `last` of a listing, or a 400.
    private func paging(_ request: Request) throws -> (n: Int, last: String?) {
        (try Self.pageSize(request.uri.queryParameters["n"]), request.uri.queryParameters["last"].map(String.init))
    }

    /// The page size `n` asks for: digits only; any count above the largest page is that page
    /// (no overflow either way); absent is the default page.
    static func pageSize(_ text: Substring?) throws(OCIError) -> Int {
        guard let text else { return defaultPage }
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw OCIError(.unsupported, "n must be a whole number, got '\(text.prefix(50))'")
        }
        return text.count > 6 ? largestPage : min(Int(text)!, largestPage)
    }

    /// `GET /v2/<name>/tags/list?n=&last=`, in lexical order, with a `Link` to the next page.
    func tags(_ request: Request, name: String) async throws -> Response {
        let (n, last) = try paging(request)
        if n == 0 {
            guard try await meta.repositoryExists(name) else { throw OCIError.nameUnknown(name) }
            return try JSONResponse.make(TagList(name: name, tags: []))
        }
        let page = try await meta.tags(in: name, after: last, limit: n)
        var response = try JSONResponse.make(TagList(name: name, tags: page.names))
        if page.more, let lastTag = page.names.last {
            response.headers[Self.link] = "</v2/\(name)/tags/list?n=\(n)&last=\(QueryString.escape(lastTag))>; rel=\"next\""
        }
        return response
    }

    /// `GET /v2/_catalog?n=&last=`: the repositories the caller may pull, `n` at a time.
    func catalog(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let (n, last) = try paging(request)
        if n == 0 { return try JSONResponse.make(Catalog(repositories: [])) }
        // Unfiltered, n + 1 names answer the request; filtered, big reads keep the number of
        // calls to the store (and so the time a page takes) from following the hidden names.
        let batch: Int
        let visible: @Sendable (String) -> Bool
        switch context.access.catalogScope() {
        case .nothing: return try JSONResponse.make(Catalog(repositories: []))
        case .everything: (batch, visible) = (n + 1, { _ in true })
        case .only(let test): (batch, visible) = (min(max(n + 1, Self.defaultPage), Self.largestPage), test)
        }
        let page = try await Self.visibleNames(after: last, count: n, batch: batch, visible: visible) {
            try await meta.repositories(after: $0, limit: $1)
        }
        var response = try JSONResponse.make(Catalog(repositories: page.names))
        if page.more, let lastShown = page.names.last {
            response.headers[Self.link] = "</v2/_catalog?n=\(n)&last=\(QueryString.escape(lastShown))>; rel=\"next\""
        }
        return response
    }

    /// Up to `count` names after `last` that pass `visible`, and whether another visible name
    /// follows them, read from `read(cursor, batch)` pages until it ends.
    ///
    /// Filtered first, paged second: the page, its `Link` (made from the last name returned) and
    /// whether there is a next page depend only on names the caller may see, so no hidden name
    /// shows in a body or a header, nor as a next page that comes back empty.
    static func visibleNames(
        after last: String?, count: Int, batch: Int, visible: (String) -> Bool,
        read: (String?, Int) async throws -> NamePage
    ) async throws -> (names: [String], more: Bool) {
        var names: [String] = []
        var cursor = last
        while true {
            let page = try await read(cursor, batch)
            for name in page.names where visible(name) {
                guard names.count < count else { return (names, true) }
                names.append(name)
            }
            // A store page that ends early is the end too, rather than a loop on the same cursor.
            guard page.more, let next = page.names.last, next != cursor else { return (names, false) }
            cursor = next
        }
    }

    /// `GET /v2/<name>/referrers/<digest>?artifactType=`: an image index of the manifests whose
    /// subject is `digest`; never a 404.
    func referrers(_ request: Request, name: String, digest text: String) async throws -> Response {
        let digest = try digest(text)
        let filter = request.uri.queryParameters["artifactType"].map(String.init)
        let manifests = try await meta.referrers(of: digest, in: name, artifactType: filter)
        var response = try JSONResponse.make(Index(manifests: manifests))
        response.headers[.contentType] = ManifestParser.ociIndex
        if filter != nil { response.headers[Self.ociFiltersApplied] = "artifactType" }
        return response
    }
}

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
    /// Store pages read for one filtered catalog request.
    static let catalogPagesScanned = 20
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
            throw OCIError(.badRequest, "UNSUPPORTED", "n must be a whole number, got '\(text.prefix(50))'")
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

    /// `GET /v2/_catalog?n=&last=`.
    func catalog(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let (n, last) = try paging(request)
        if n == 0 { return try JSONResponse.make(Catalog(repositories: [])) }
        // Only what the caller may pull; pages of the store are read until n names pass the
        // filter, at most `catalogPagesScanned` of them per request (the Link goes on from there).
        var names: [String] = []
        var cursor = last
        var more = false
        for _ in 0..<Self.catalogPagesScanned {
            let page = try await meta.repositories(after: cursor, limit: n)
            for name in page.names {
                cursor = name
                if context.access.lists(name) { names.append(name) }
                if names.count == n { break }
            }
            // More follow if the store said so, or if this page stopped before its last name.
            more = page.more || (page.names.last.map { $0 != cursor } ?? false)
            if names.count == n || !page.more { break }
        }
        var response = try JSONResponse.make(Catalog(repositories: names))
        if more, let cursor {
            response.headers[Self.link] = "</v2/_catalog?n=\(n)&last=\(QueryString.escape(cursor))>; rel=\"next\""
        }
        return response
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

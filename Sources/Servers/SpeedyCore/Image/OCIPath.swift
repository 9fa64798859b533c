/// What a path under `/v2/` asks for, parsed from its last components, since repository names
/// have slashes of their own.
package enum OCIPath: Equatable {
    case base
    case catalog
    case tags(name: String)
    case manifest(name: String, reference: String)
    case blob(name: String, digest: String)
    case uploads(name: String)
    case upload(name: String, id: String)
    case referrers(name: String, digest: String)
    /// `/v2/<name>/_speedy/chunks/<digest>`: Speedy's extension (OCI keeps `/v2/<name>/_<ext>/`
    /// for them) answering a blob's ``SpeedyCore/ChunkMap``; a pull of `<name>` like the blob's GET.
    case chunkMap(name: String, digest: String)

    /// The methods the API answers on this path, as an `Allow` header value.
    package var allowedMethods: String {
        switch self {
        case .base, .catalog, .tags, .referrers: "GET, HEAD, OPTIONS"
        case .chunkMap: "GET, OPTIONS"
        case .manifest: "GET, HEAD, PUT, DELETE, OPTIONS"
        case .blob: "GET, HEAD, DELETE, OPTIONS"
        case .uploads: "POST, OPTIONS"
        case .upload: "GET, PATCH, PUT, DELETE, OPTIONS"
        }
    }

    /// The route's name in metrics, with the repository and references left out (`/v2/<name>/blobs/<digest>`).
    package var routeLabel: String {
        switch self {
        case .base: "/v2/"
        case .catalog: "/v2/_catalog"
        case .tags: "/v2/<name>/tags/list"
        case .manifest: "/v2/<name>/manifests/<reference>"
        case .blob: "/v2/<name>/blobs/<digest>"
        case .uploads: "/v2/<name>/blobs/uploads/"
        case .upload: "/v2/<name>/blobs/uploads/<id>"
        case .referrers: "/v2/<name>/referrers/<digest>"
        case .chunkMap: "/v2/<name>/_speedy/chunks/<digest>"
        }
    }

    /// Parses a request path; nil when it is not an API path.
    package init?(path: String) {
        guard path.hasPrefix("/v2") else { return nil }
        let rest = path.dropFirst(3)
        if rest.isEmpty || rest == "/" {
            self = .base
            return
        }
        guard rest.hasPrefix("/") else { return nil }
        var parts = rest.dropFirst().split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        if parts == ["_catalog"] {
            self = .catalog
            return
        }
        // A trailing slash (`/blobs/uploads/`) leaves an empty last part.
        let trailingSlash = parts.last == ""
        if trailingSlash { parts.removeLast() }
        func name(dropping count: Int) -> String? {
            guard parts.count > count else { return nil }
            return parts.dropLast(count).joined(separator: "/")
        }
        let n = parts.count
        if n >= 3, parts[n - 2] == "tags", parts[n - 1] == "list", let name = name(dropping: 2) {
            self = .tags(name: name)
        } else if n >= 3, parts[n - 2] == "blobs", parts[n - 1] == "uploads", let name = name(dropping: 2) {
            self = .uploads(name: name)
        } else if n >= 4, parts[n - 3] == "blobs", parts[n - 2] == "uploads", !trailingSlash, let name = name(dropping: 3) {
            self = .upload(name: name, id: parts[n - 1])
        } else if n >= 3, parts[n - 2] == "blobs", !trailingSlash, let name = name(dropping: 2) {
            self = .blob(name: name, digest: parts[n - 1])
        } else if n >= 3, parts[n - 2] == "manifests", !trailingSlash, let name = name(dropping: 2) {
            self = .manifest(name: name, reference: parts[n - 1])
        } else if n >= 3, parts[n - 2] == "referrers", !trailingSlash, let name = name(dropping: 2) {
            self = .referrers(name: name, digest: parts[n - 1])
        } else if n >= 4, parts[n - 3] == "_speedy", parts[n - 2] == "chunks", !trailingSlash, let name = name(dropping: 3) {
            self = .chunkMap(name: name, digest: parts[n - 1])
        } else {
            return nil
        }
    }

    /// The repository the path names, if any.
    package var name: String? {
        switch self {
        case .base, .catalog: nil
        case .tags(let name), .manifest(let name, _), .blob(let name, _), .uploads(let name), .upload(let name, _),
            .referrers(let name, _), .chunkMap(let name, _):
            name
        }
    }
}

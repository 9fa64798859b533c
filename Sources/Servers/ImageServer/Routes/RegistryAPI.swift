import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServerSupport
import SpeedyCore
import Synchronization

/// A count of things in progress, for gauges and heartbeats.
final class InProgressCount: Sendable {
    private let count = Atomic<Int>(0)

    /// The count now.
    var value: Int { count.load(ordering: .relaxed) }

    /// Counts one while `body` runs.
    func counting<T>(_ body: () async throws -> T) async rethrows -> T {
        count.add(1, ordering: .relaxed)
        defer { count.subtract(1, ordering: .relaxed) }
        return try await body()
    }
}

/// The OCI Distribution API (v1.1) over Speedy's metadata and chunk stores.
///
/// Handlers are split by concern: blobs (BlobRoutes), uploads (UploadRoutes), manifests
/// (ManifestRoutes), listings (ListingRoutes). This file parses the path and dispatches.
struct RegistryAPI: Sendable {
    let meta: any MetadataStore
    let io: ChunkIO
    let budget: MemoryBudget
    let configuration: ImageServerConfiguration
    let logger: Logger
    /// The upstreams this imageserver caches; nil when it caches none.
    let pullThrough: PullThroughCache?
    /// Tag pulls not yet sent to the metaserver.
    let pullLog = TagPullLog()
    /// Upload requests whose bodies are streaming in now.
    let uploadsInProgress = InProgressCount()

    /// The body reader of an upload by the request's client.
    func upload(_ context: RegistryRequestContext) -> ChunkedUpload {
        ChunkedUpload(
            io: io, budget: budget, chunkSize: configuration.chunkSize, inFlight: configuration.writesInFlightPerUpload,
            client: context.client)
    }

    /// The blob sender of a download by the request's client.
    func stream(_ context: RegistryRequestContext) -> BlobStream { BlobStream(io: io, budget: budget, client: context.client) }

    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!
    static let uploadUUID = HTTPField.Name("Docker-Upload-UUID")!
    static let ociSubject = HTTPField.Name("OCI-Subject")!
    static let ociFiltersApplied = HTTPField.Name("OCI-Filters-Applied")!
    static let link = HTTPField.Name("Link")!

    func register(on router: Router<RegistryRequestContext>) {
        for method: HTTPRequest.Method in [.get, .head, .post, .put, .patch, .delete, .options] {
            router.on("/v2", method: method) { request, context in try await dispatch(request, context) }
            router.on("/v2/**", method: method) { request, context in try await dispatch(request, context) }
        }
    }

    private func dispatch(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        guard let path = OCIPath(path: request.uri.path) else {
            throw OCIError(.nameUnknown, "no such API endpoint: \(request.uri.path)")
        }
        if case .upload = path, request.method == .patch || request.method == .put {
            return try await uploadsInProgress.counting { try await route(path, request, context) }
        }
        if case .uploads = path, request.method == .post {
            return try await uploadsInProgress.counting { try await route(path, request, context) }
        }
        return try await route(path, request, context)
    }

    private func route(_ path: OCIPath, _ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        if let name = path.name, !OCINames.isValidRepository(name) { throw OCIError.nameInvalid(name) }
        if let name = path.name, let (source, _) = pullThrough?.source(for: name), Self.isPush(path, request.method) {
            throw OCIError(.denied, "\(name) is a pull-through cache of \(source.upstream.url): push to the upstream")
        }
        switch (path, request.method) {
        case (.base, .get), (.base, .head):
            return try JSONResponse.make(Empty())
        case (.catalog, .get):
            return try await catalog(request, context)
        case (.tags(let name), .get):
            return try await tags(request, name: name)
        case (.referrers(let name, let digest), .get):
            return try await referrers(request, name: name, digest: digest)
        case (.blob(let name, let digest), .get), (.blob(let name, let digest), .head):
            return try await getBlob(request, context, name: name, digest: digest, head: request.method == .head)
        case (.chunkMap(let name, let digest), .get):
            return try await chunkMap(name: name, digest: digest)
        case (.blob(let name, let digest), .delete):
            return try await deleteBlob(name: name, digest: digest)
        case (.uploads(let name), .post):
            return try await startUpload(request, context, name: name)
        case (.upload(let name, let id), .patch):
            return try await patchUpload(request, context, name: name, id: id)
        case (.upload(let name, let id), .put):
            return try await finishUpload(request, context, name: name, id: id)
        case (.upload(let name, let id), .get):
            return try await uploadStatus(name: name, id: id)
        case (.upload(let name, let id), .delete):
            return try await cancelUpload(context, name: name, id: id)
        case (.manifest(let name, let reference), .get), (.manifest(let name, let reference), .head):
            return try await getManifest(request, name: name, reference: reference, head: request.method == .head)
        case (.manifest(let name, let reference), .put):
            return try await putManifest(request, name: name, reference: reference)
        case (.manifest(let name, let reference), .delete):
            return try await deleteManifest(name: name, reference: reference)
        case (_, .options):
            return Response(status: .noContent, headers: [.allow: path.allowedMethods, .contentLength: "0"])
        default:
            var error = OCIError.methodNotAllowed("\(request.method) is not supported on \(request.uri.path)")
            error.headers[.allow] = path.allowedMethods
            throw error
        }
    }

    /// Whether `method` on `path` writes content (an upload or a manifest put).
    static func isPush(_ path: OCIPath, _ method: HTTPRequest.Method) -> Bool {
        switch path {
        case .uploads, .upload: method != .get && method != .head && method != .options
        case .manifest: method == .put
        default: false
        }
    }

    /// Parses a digest from a path or query, or answers DIGEST_INVALID.
    func digest(_ text: String?) throws(OCIError) -> Digest {
        guard let text, let digest = Digest(parsing: text) else {
            throw OCIError.digestInvalid("'\(text ?? "")' is not a valid digest (sha256:<64 hex> or sha512:<128 hex>)")
        }
        return digest
    }
}

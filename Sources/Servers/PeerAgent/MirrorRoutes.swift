import CoreMetrics
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import ServerSupport
import SpeedyCore

/// The agent's `/v2/` API: a pull-only mirror of the registry. Everything but a whole blob GET
/// is forwarded with the client's credentials and answered as the registry answers; pushes
/// and deletes are refused. Whole blob GETs go through ``BlobRoute``.
struct MirrorRoutes: Sendable {
    /// Where everything but whole blob GETs goes.
    let upstream: RegistryUpstream
    /// Whole blob GETs.
    let blobs: BlobRoute

    /// The message of the 405 a push or delete gets.
    static let pullsOnly = "speedy peer serves pulls only: push to the registry"

    /// Adds the `/v2` routes to `router`.
    func register(on router: Router<SpeedyRequestContext>) {
        for method in [HTTPRequest.Method.get, .head, .options] {
            router.on("/v2", method: method) { request, _ in try await self.pull(request) }
            router.on("/v2/**", method: method) { request, _ in try await self.pull(request) }
        }
        for method in [HTTPRequest.Method.post, .put, .patch, .delete] {
            router.on("/v2", method: method) { _, _ in Self.refusal() }
            router.on("/v2/**", method: method) { _, _ in Self.refusal() }
        }
    }

    /// A pull: a whole blob GET by a SHA-256 digest goes the chunk path; anything else (blob
    /// HEADs, ranged GETs, manifests, tags, referrers, the catalog, `/v2/`) is forwarded. The
    /// target forwarded is rebuilt from the routed path and the query, never the target as sent
    /// (an absolute form, `..` segments): only the registry's `/v2/` API is reachable.
    func pull(_ request: Request) async throws -> Response {
        let head = request.method == .head
        guard let path = Self.registryPath(request.uri.path) else {
            return Self.error(.notFound, code: "NAME_UNKNOWN", Self.notRegistryPath, head: head)
        }
        let target = path + (request.uri.query.map { "?" + $0 } ?? "")
        do {
            if request.method == .get, request.headers[.range] == nil, let (name, digest) = Self.blob(in: path) {
                return try await blobs.get(name: name, digest: digest, target: target, clientHeaders: request.headers)
            }
            let response = try await upstream.send(request.method, target, clientHeaders: request.headers)
            return upstream.relay(response, head: head)
        } catch PeerError.registry(let reason) {
            // Nothing can be authorized without the registry: a 503 the client may retry.
            upstream.logger.warning("\(reason)")
            return Self.error(.serviceUnavailable, code: "UNAVAILABLE", "speedy peer cannot reach the registry", head: head)
        }
    }

    /// The message of the 404 a path outside the registry's API gets.
    static let notRegistryPath = "speedy peer forwards only /v2/ paths without empty, dot or dot-dot segments"

    /// The path to forward for a routed `path`: `/v2/`, or `/v2/` and segments each non-empty
    /// (but a last one: a trailing slash) that, percent-decoded, are neither `.` nor `..` and
    /// hold no slash, backslash or control character. Nil for anything else.
    static func registryPath(_ path: String) -> String? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].isEmpty, parts[1] == "v2" else { return nil }
        let rest = parts.dropFirst(2)
        if rest.isEmpty || rest.elementsEqual([""]) { return "/v2/" }
        for index in rest.indices where !isPlainSegment(rest[index]) {
            guard index == rest.indices.last, rest[index].isEmpty else { return nil }
        }
        return "/v2/" + rest.joined(separator: "/")
    }

    /// Whether `segment` names one thing and nothing else once the registry decodes it.
    static func isPlainSegment(_ segment: Substring) -> Bool {
        guard !segment.isEmpty, let decoded = String(segment).removingPercentEncoding else { return false }
        return decoded != "." && decoded != ".."
            && !decoded.unicodeScalars.contains { $0 == "/" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7f }
    }

    /// The repository and digest of a blob path (`/v2/<name>/blobs/<sha256 digest>`).
    static func blob(in path: String) -> (name: String, digest: Digest)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        // "", "v2", name…, "blobs", digest
        guard parts.count >= 5, parts[1] == "v2", parts[parts.count - 2] == "blobs",
            let digest = Digest(parsing: parts[parts.count - 1]), digest.algorithm == .sha256
        else { return nil }
        let name = parts[2..<(parts.count - 2)].joined(separator: "/")
        guard OCINames.isValidRepository(name) else { return nil }
        return (name, digest)
    }

    /// The route's name in metrics and the request log: a small fixed set, never the path.
    static func routeLabel(_ path: String) -> String? {
        guard path.hasPrefix("/v2") else { return nil }
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        if parts.count <= 1 { return "/v2/" }
        if parts.count == 2, parts[1] == "_catalog" { return "/v2/_catalog" }
        let kinds: [(Int, Substring, String)] = [
            (2, "blobs", "/v2/<name>/blobs/<digest>"), (2, "manifests", "/v2/<name>/manifests/<reference>"),
            (2, "referrers", "/v2/<name>/referrers/<digest>"), (2, "tags", "/v2/<name>/tags/list"),
        ]
        if parts.count >= 3, parts[parts.count - 2] == "blobs", parts[parts.count - 1] == "uploads" { return "/v2/<name>/blobs/uploads/" }
        if parts.count >= 4, parts[parts.count - 3] == "blobs", parts[parts.count - 2] == "uploads" { return "/v2/<name>/blobs/uploads/<id>" }
        for (back, kind, label) in kinds where parts.count > back && parts[parts.count - back] == kind { return label }
        return "/v2/other"
    }

    /// The answer to a push or delete: 405 `UNSUPPORTED`, in the OCI error format.
    static func refusal() -> Response {
        var response = error(.methodNotAllowed, code: "UNSUPPORTED", pullsOnly, head: false)
        response.headers[.allow] = "GET, HEAD, OPTIONS"
        return response
    }

    /// An answer in the OCI error format, `{"errors": [{"code", "message"}]}` (no body to a HEAD).
    static func error(_ status: HTTPResponse.Status, code: String, _ message: String, head: Bool) -> Response {
        let body = #"{"errors":[{"code":"\#(code)","message":"\#(message)"}]}"#
        return Response(
            status: status,
            headers: [.contentType: "application/json", HTTPField.Name("Docker-Distribution-API-Version")!: "registry/2.0"],
            body: head ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(string: body)))
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import ServerSupport
import SpeedyCore

/// Writes the registry's ``AuditLog``: every manifest push and every delete whatever its outcome,
/// and every request refused for its credentials (`login_failed`) or its rights (`denied`).
/// It sits outside the routes and the login check, so it sees the status each was answered, and
/// the user the check found (``RequestNote``).
struct AuditMiddleware: RouterMiddleware {
    typealias Context = RegistryRequestContext
    let log: AuditLog

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            record(request, context, status: response.status.code, digest: response.headers[.init("Docker-Content-Digest")!])
            return response
        } catch {
            record(request, context, status: (error as? any HTTPResponseError)?.status.code ?? 500, digest: nil)
            throw error
        }
    }

    /// What the request was, for the log; nil for requests the log does not keep.
    static func event(_ request: Request, status: Int) -> String? {
        // A refusal says what was refused in its method and path.
        if status == 401, request.headers[.authorization] != nil { return "login_failed" }
        if status == 403 { return "denied" }
        let path = OCIPath(path: request.uri.path)
        if request.method == .put, case .manifest? = path { return "push" }
        if request.method == .delete, path != nil { return "delete" }
        return nil
    }

    private func record(_ request: Request, _ context: Context, status: Int, digest: String?) {
        guard let event = Self.event(request, status: status) else { return }
        let path = OCIPath(path: request.uri.path)
        var reference: String?
        switch path {
        case .manifest(_, let tagOrDigest)?: reference = tagOrDigest
        case .blob(_, let blobDigest)?: reference = blobDigest
        default: break
        }
        let proxy = context.peerAddress != context.remoteAddress ? context.peerAddress?.ipAddress : nil
        log.record(
            AuditLog.Entry(
                event: event, user: RequestNote.current?.user ?? Self.claimedUser(request), client: context.clientAddress, proxy: proxy,
                method: request.method.rawValue, path: request.uri.path, repository: path?.name, reference: reference,
                digest: event == "push" ? digest : nil, status: status))
    }

    /// The user name of a Basic header the login check refused (never its password), at most
    /// 128 characters; nil for anything else.
    static func claimedUser(_ request: Request) -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Basic "),
              let decoded = Data(base64Encoded: String(header.dropFirst(6).prefix(4096))),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":")
        else { return nil }
        return String(text[..<colon].prefix(128))
    }
}

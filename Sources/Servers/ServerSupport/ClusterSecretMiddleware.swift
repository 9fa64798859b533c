import HTTPTypes
import Hummingbird
import Logging
import SpeedyCore

/// Refuses every request to an internal API that does not carry the cluster secret, with 401
/// `UNAUTHORIZED`, and logs the refusal (never the header it got). `/v1/health`, `/healthz` and `/readyz` stay open so load
/// balancers and supervisors can probe without the secret; it says nothing but "ok".
public struct ClusterSecretMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let secret: ClusterSecret
    let logger: Logger

    /// The paths answered without the secret.
    public static var openPaths: Set<String> { HealthRoutes.openPaths }

    /// Only these paths are guarded, when set: the registry's port guards `/metrics` alone (its
    /// API has logins of its own).
    let guarded: Set<String>?

    /// Guards a router with `secret`: every path but ``openPaths``, or only those in `guarding`.
    public init(secret: ClusterSecret, logger: Logger, guarding: Set<String>? = nil) {
        self.secret = secret
        self.logger = logger
        self.guarded = guarding
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        let open = guarded.map { !$0.contains(path) } ?? Self.openPaths.contains(path)
        if open || secret.isCarried(by: request.headers[.authorization]) {
            return try await next(request, context)
        }
        let why = request.headers[.authorization] == nil ? "no cluster secret" : "a wrong cluster secret"
        logger.warning("refused \(request.method) \(request.uri.path) from \(context.clientAddress): \(why)")
        var response = try APIError(.unauthorized, code: "UNAUTHORIZED", "this API needs the cluster secret (Authorization: Bearer)")
            .response(from: request, context: context)
        response.headers[.wwwAuthenticate] = "Bearer realm=\"speedy-cluster\""
        return response
    }
}

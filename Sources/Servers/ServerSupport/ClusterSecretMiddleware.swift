import HTTPTypes
import Hummingbird
import Logging
import SpeedyCore

/// Refuses every request to an internal API that does not carry the cluster secret, with 401
/// `UNAUTHORIZED`, and logs the refusal (never the header it got). `/v1/health`, `/healthz` and `/readyz` stay open so load
/// balancers and supervisors can probe without the secret; it says nothing but "ok".
///
/// It fails closed: a request is let through without the secret only when the path the router
/// will route it by (``RoutedPath``) is one of the ``PublicPaths``, or, on a chunkserver (given a
/// ``ChunkTicketGate``), when it is a `GET` or `HEAD` of the one chunk its
/// `Authorization: SpeedyTicket` ticket names; every other spelling, and every route added later,
/// asks for the secret. A ticket refused answers 401 (malformed, forged, expired) or 403 `FORBIDDEN`
/// (a good ticket used for anything else).
public struct ClusterSecretMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let secrets: ClusterSecretRing
    let logger: Logger
    let open: PublicPaths
    let tickets: ChunkTicketGate?

    /// Guards a router with `secret`: every routed path but those `open` names; with `tickets`,
    /// chunk reads may carry a chunk ticket instead.
    public init(secret: ClusterSecret, logger: Logger, open: PublicPaths = .probes, tickets: ChunkTicketGate? = nil) {
        self.init(secrets: ClusterSecretRing(secret), logger: logger, open: open, tickets: tickets)
    }

    /// Guards a router with every secret of `secrets` (the old and the new while rotating).
    public init(secrets: ClusterSecretRing, logger: Logger, open: PublicPaths = .probes, tickets: ChunkTicketGate? = nil) {
        self.secrets = secrets
        self.logger = logger
        self.open = open
        self.tickets = tickets
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if open.contains(request.routedPath) || secrets.isCarried(by: request.headers[.authorization]) {
            return try await next(request, context)
        }
        if let tickets, let ticket = ChunkTicketGate.ticket(in: request.headers[.authorization]) {
            return try await admit(ticket, tickets, request, context, next: next)
        }
        let why = request.headers[.authorization] == nil ? "no cluster secret" : "a wrong cluster secret"
        logger.warning("refused \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): \(why)")
        var response = try APIError(.unauthorized, "this API needs the cluster secret (Authorization: Bearer)")
            .response(from: request, context: context)
        response.headers[.wwwAuthenticate] = "Bearer realm=\"speedy-cluster\""
        return response
    }

    /// Lets a chunk read through on its ticket, or answers why not (the log names the method,
    /// path, client and reason, never the ticket).
    private func admit(
        _ ticket: String, _ gate: ChunkTicketGate, _ request: Request, _ context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let refusal: APIError
        do {
            try gate.admit(ticket, method: request.method, routed: request.routedPath, nowMs: currentTimeMillis())
            return try await next(request, context)
        } catch let error as ChunkTicketGate.Refusal {
            switch error {
            case .unauthorized(let why): refusal = APIError(.unauthorized, "\(why)")
            case .forbidden(let why): refusal = APIError(.forbidden, why)
            }
        }
        logger.warning("refused \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): \(refusal.message)")
        var response = try refusal.response(from: request, context: context)
        if refusal.status == .unauthorized { response.headers[.wwwAuthenticate] = "SpeedyTicket realm=\"speedy-cluster\"" }
        return response
    }
}

/// The routed paths (``RoutedPath``) a ``ClusterSecretMiddleware`` lets through without the secret.
public struct PublicPaths: Sendable {
    /// Exactly these paths.
    public var paths: Set<String>
    /// These paths and everything below them (`/v2` opens `/v2/…`).
    public var trees: Set<String>

    /// Opens `paths` and everything below `trees`.
    public init(paths: Set<String>, trees: Set<String> = []) {
        self.paths = paths
        self.trees = trees
    }

    /// The probes alone: what an internal role answers without the secret.
    public static var probes: PublicPaths { PublicPaths(paths: HealthRoutes.openPaths) }

    /// Whether `routed` (a ``RoutedPath``) needs no secret.
    public func contains(_ routed: String) -> Bool {
        paths.contains(routed) || trees.contains { RoutedPath.isWithin(routed, $0) }
    }
}

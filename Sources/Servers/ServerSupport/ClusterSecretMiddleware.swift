import HTTPTypes
import Hummingbird
import Logging
import SpeedyClients
import SpeedyCore

/// Refuses every request to an internal API that does not carry a cluster credential, with 401
/// `UNAUTHORIZED`, and logs the refusal (never the header it got). `/v1/health`, `/healthz` and
/// `/readyz` stay open so load balancers and supervisors can probe without one; they say nothing
/// but "ok".
///
/// The credential is the cluster secret (one for every role: whoever holds it may call every
/// route) or, with a role table (``RoleTableFile``), a role's own secret: the caller is then the
/// role the table names, and ``RouteAuthorization`` says which routes it may call; any other is
/// answered 403 `FORBIDDEN`.
///
/// It fails closed: a request is let through without a credential only when the path the router
/// will route it by (``RoutedPath``) is one of the ``PublicPaths``, or, on a chunkserver (given a
/// ``ChunkTicketGate``), when it is a `GET` or `HEAD` of the one chunk its
/// `Authorization: SpeedyTicket` ticket names; every other spelling, and every route added later,
/// asks for one. A ticket refused answers 401 (malformed, forged, expired) or 403 `FORBIDDEN`
/// (a good ticket used for anything else).
public struct ClusterSecretMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    let secrets: ClusterSecretRing
    /// The kind of port guarded: the credentials callers send are bound to it (``ClusterCredential``).
    let audience: ClusterRole
    private let derived: DerivedCredentials
    let roles: RoleTableFile?
    let authorization: RouteAuthorization?
    let logger: Logger
    let open: PublicPaths
    let tickets: ChunkTicketGate?

    /// Guards a router with `secret`: every routed path but those `open` names; with `tickets`,
    /// chunk reads may carry a chunk ticket instead.
    public init(
        secret: ClusterSecret, audience: ClusterRole, logger: Logger, open: PublicPaths = .probes, tickets: ChunkTicketGate? = nil
    ) {
        self.init(secrets: ClusterSecretRing(secret), audience: audience, logger: logger, open: open, tickets: tickets)
    }

    /// Guards a router with every secret of `secrets` (the old and the new while rotating); or,
    /// given `roles`, with the role table instead, each role held to what `authorization` lets it
    /// call (without `authorization`, the operator alone gets through).
    public init(
        secrets: ClusterSecretRing, audience: ClusterRole, roles: RoleTableFile? = nil, authorization: RouteAuthorization? = nil,
        logger: Logger, open: PublicPaths = .probes, tickets: ChunkTicketGate? = nil
    ) {
        self.secrets = secrets
        self.audience = audience
        self.derived = DerivedCredentials(secrets: secrets, audience: audience)
        self.roles = roles
        self.authorization = authorization
        self.logger = logger
        self.open = open
        self.tickets = tickets
    }

    /// The role whose credential `authorization` carries: with one shared secret, its holder is
    /// an operator (it may do everything), whether it sent the credential for this kind of port
    /// or the secret itself; nil for none.
    func caller(_ authorization: String?) -> ClusterRole? {
        if let roles { return roles.role(carriedBy: authorization, at: audience) }
        return derived.isCarried(by: authorization) || secrets.isCarried(by: authorization) ? .operator : nil
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let routed = request.routedPath
        if open.contains(routed) { return try await next(request, context) }
        if let role = caller(request.headers[.authorization]) {
            if role == .operator || authorization?.allows(role, request.method, routed) == true {
                return try await next(request, context)
            }
            let server = authorization?.server ?? "this role"
            let refusal = APIError(.forbidden, "the \(role) role may not call \(request.method) \(routed.prefix(200)) on the \(server)")
            logger.warning("refused \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): \(refusal.message)")
            return try refusal.response(from: request, context: context)
        }
        if let tickets, let ticket = ChunkTicketGate.ticket(in: request.headers[.authorization]) {
            return try await admit(ticket, tickets, request, context, next: next)
        }
        let credential = roles == nil ? "cluster secret" : "role credential"
        let why = request.headers[.authorization] == nil ? "no \(credential)" : "a wrong \(credential)"
        logger.warning("refused \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): \(why)")
        var response = try APIError(.unauthorized, "this API needs the \(credential) (Authorization: Bearer)")
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

/// The credentials (``ClusterCredential``) the secrets of a ring make for one kind of port.
struct DerivedCredentials: Sendable {
    private let values: SecretDerived<[UInt8]>

    init(secrets: ClusterSecretRing, audience: ClusterRole) {
        values = SecretDerived(secrets) { Array(ClusterCredential.authorization($0, for: audience).utf8) }
    }

    /// Whether `header` carries the credential of one of the accepted secrets; every one is
    /// compared, each in constant time.
    func isCarried(by header: String?) -> Bool {
        guard let header else { return false }
        let presented = Array(header.utf8)
        return values.values.reduce(false) { found, value in ConstantTime.equal(presented, value) || found }
    }
}

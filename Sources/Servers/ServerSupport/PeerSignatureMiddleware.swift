import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import SpeedyCore

/// Refuses every request that is not signed with the swarm's peer secret (``PeerKey``), with 401
/// `UNAUTHORIZED`, and logs the refusal (never the header): the guard of the tracker and of an
/// agent's peer port. The probes (`/healthz`, `/readyz`, `/v1/health`) stay open. A request's body
/// (an announce) is read, up to ``maxBodyBytes``, before the handler sees it, because the
/// signature covers it.
///
/// A request let through carries the id of the agent that signed it in
/// ``HTTPField/Name/speedyPeerAgent``, set here after any copy the client sent was removed, so a
/// handler can hold a request to what its signer may do (the tracker: an agent announces only
/// itself).
public struct PeerSignatureMiddleware<Context: RemoteAddressRequestContext>: RouterMiddleware {
    /// The largest body a signed request may carry.
    public static var maxBodyBytes: Int { 8 << 20 }

    let key: PeerKey
    let logger: Logger
    let open: PublicPaths

    /// Guards a router with `key`: every routed path but those `open` names.
    public init(key: PeerKey, logger: Logger, open: PublicPaths = .probes) {
        self.key = key
        self.logger = logger
        self.open = open
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Only this middleware may say who signed: a client's own copy of the header never passes.
        var request = Self.naming(nil, in: request)
        if open.contains(request.routedPath) { return try await next(request, context) }
        let bodyHash: String
        if request.method == .get || request.method == .head {
            bodyHash = PeerKey.emptyBodyHash
        } else {
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: Self.maxBodyBytes)
            } catch {
                return try APIError(.bodyTooLarge, "a signed request body is at most \(Self.maxBodyBytes) bytes").response(from: request, context: context)
            }
            bodyHash = PeerKey.bodyHash(body)
        }
        let agent: String
        do {
            agent = try key.verify(
                request.headers[.authorization], method: request.method.rawValue, target: request.head.path ?? "",
                bodyHash: bodyHash, nowMs: currentTimeMillis())
        } catch {
            logger.warning("refused \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): \(error)")
            var response = try APIError(.unauthorized, "this API needs a request signed with the peer secret (\(error))")
                .response(from: request, context: context)
            response.headers[.wwwAuthenticate] = "\(PeerKey.scheme) realm=\"speedy-peers\""
            return response
        }
        // Outside the check: an error the handler throws (a 403, a 400) is its own answer, not a bad signature.
        return try await next(Self.naming(agent, in: request), context)
    }

    /// `request` with ``HTTPField/Name/speedyPeerAgent`` set to `agent`, or removed (a request's
    /// head cannot be changed in place, so the request is made again around the same body).
    private static func naming(_ agent: String?, in request: Request) -> Request {
        guard agent != nil || request.headers[.speedyPeerAgent] != nil else { return request }
        var head = request.head
        head.headerFields[.speedyPeerAgent] = agent
        return Request(head: head, body: request.body)
    }
}

extension HTTPField.Name {
    /// The agent a request's peer signature names, as ``PeerSignatureMiddleware`` verified it.
    public static let speedyPeerAgent = HTTPField.Name("Speedy-Peer-Agent")!
}

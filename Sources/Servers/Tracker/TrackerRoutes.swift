import HTTPTypes
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore

/// The tracker's API (docs/api.md, "The tracker"), behind ``PeerSignatureMiddleware``: each
/// handler holds the request to what its signer may do, so one agent can neither announce nor
/// look up as another.
///
/// - `POST /v1/announce`: a ``SwarmAnnounce`` → ``SwarmAnnounceReply``.
/// - `GET /v1/peers/<digest>?agent=<id>`: ``SwarmPeers``, the caller left out.
/// - `POST /v1/reports`: a ``SwarmReport`` → 204.
/// - `GET /v1/swarm`: ``SwarmSummary``.
public struct TrackerRoutes: Sendable {
    /// The swarm the routes read and change.
    public let table: SwarmTable

    /// Where quarantines are told.
    let logger: Logger

    /// Routes over `table`.
    public init(table: SwarmTable, logger: Logger = Logger(label: "speedy.tracker")) {
        self.table = table
        self.logger = logger
    }

    /// Adds the three routes to `router`, which must be guarded by ``PeerSignatureMiddleware``.
    public func register<Context: RequestContext>(on router: Router<Context>) {
        router.post("/v1/announce") { request, _ in try await announce(request) }
        router.get("/v1/peers/:digest") { request, context in try lookup(request, digest: context.parameters.get("digest") ?? "") }
        router.post("/v1/reports") { request, _ in try await report(request) }
        router.get("/v1/swarm") { _, _ in try JSONResponse.make(table.summary()) }
    }

    /// Takes a ``SwarmReport`` from its signer: 204, and a warning when it quarantines the accused.
    private func report(_ request: Request) async throws -> Response {
        let signer = try Self.signer(of: request)
        let report = try await request.decodeJSON(SwarmReport.self, limit: 64 << 10)
        guard report.agent == signer else {
            throw APIError(.forbidden, "agent \(signer) signed a report for agent '\(report.agent.prefix(64))': an agent reports only for itself")
        }
        guard Digest(parsing: report.digest) != nil, report.index >= 0, !report.accused.isEmpty, report.accused.utf8.count <= 64 else {
            throw APIError.badRequest("a report names the accused agent (at most 64 bytes), a digest (sha256:<64 hex>) and a chunk index of 0 or more")
        }
        if table.report(by: signer, accused: report.accused) {
            logger.warning("agent \(report.accused.prefix(64)) left out of lookups for \(SwarmTable.quarantineMs / 60_000) minutes: reported by \(SwarmTable.reportsToQuarantine) agents for bad chunks, the last \(signer) for chunk \(report.index) of \(report.digest)")
        }
        return Response(status: .noContent)
    }

    /// The Prometheus route label of a path: digests are not labels.
    public static func routeLabel(_ path: String) -> String? {
        if path == "/v1/announce" || path == "/v1/swarm" || path == "/v1/reports" { return path }
        return path.hasPrefix("/v1/peers/") ? "/v1/peers/:digest" : nil
    }

    private func announce(_ request: Request) async throws -> Response {
        let signer = try Self.signer(of: request)
        let announce = try await request.decodeJSON(SwarmAnnounce.self, limit: PeerSignatureMiddleware<SpeedyRequestContext>.maxBodyBytes)
        guard announce.agent == signer else {
            throw APIError(.forbidden, "agent \(signer) signed an announce for agent '\(announce.agent.prefix(64))': an agent announces only itself")
        }
        guard Self.isPeerAddress(announce.address) else {
            throw APIError.badRequest("address must be http://HOST:PORT or https://HOST:PORT with nothing after, got '\(announce.address.prefix(200))'")
        }
        guard announce.blobs.count <= Swarm.maxBlobsPerAnnounce else {
            throw APIError.badRequest("an announce names at most \(Swarm.maxBlobsPerAnnounce) blobs, got \(announce.blobs.count); send the rest in partial announces")
        }
        var blobs: [Digest: ChunkBitfield] = [:]
        var held: [Digest: ChunkBitfield] = [:]
        for holding in announce.blobs {
            guard let digest = Digest(parsing: holding.digest) else {
                throw APIError.badRequest("'\(holding.digest.prefix(140))' is not a digest (sha256:<64 hex>)")
            }
            blobs[digest] = holding.have
            if let inHand = holding.held {
                guard inHand.isSubset(of: holding.have) else {
                    throw APIError.badRequest("the chunks held of \(digest) must be among those it has (same count, a subset)")
                }
                held[digest] = inHand
            }
        }
        do {
            try table.announce(
                agent: signer, address: announce.address, full: announce.full, blobs: blobs, held: held, servedBytes: announce.servedBytes)
        } catch .full(let reason) {
            throw APIError(.swarmFull, reason)
        } catch .tooManyHoldings(let limit) {
            throw APIError.badRequest("an agent holds at most \(limit) blobs at the tracker")
        } catch .bitfieldsTooLarge(let limit) {
            throw APIError.badRequest("an agent's bitfields take at most \(limit) bytes at the tracker")
        }
        return try JSONResponse.make(SwarmAnnounceReply(intervalSeconds: Int(table.interval.components.seconds)))
    }

    private func lookup(_ request: Request, digest text: String) throws -> Response {
        let signer = try Self.signer(of: request)
        guard let caller = request.uri.queryParameters["agent"].map(String.init) else {
            throw APIError.badRequest("a lookup names its caller: ?agent=<id>")
        }
        guard caller == signer else {
            throw APIError(.forbidden, "agent \(signer) signed a lookup for agent '\(caller.prefix(64))'")
        }
        guard let digest = Digest(parsing: text) else {
            throw APIError.badRequest("'\(text.prefix(140))' is not a digest (sha256:<64 hex>)")
        }
        return try JSONResponse.make(SwarmPeers(digest: digest.description, peers: table.peers(of: digest, caller: caller), callerJoined: table.joined(digest, by: caller)))
    }

    /// The verified signer; a router without the signature middleware answers 401 rather than trust anyone.
    private static func signer(of request: Request) throws -> String {
        guard let agent = request.headers[.speedyPeerAgent] else {
            throw APIError(.unauthorized, "this API needs a request signed with the peer secret")
        }
        return agent
    }

    /// Whether `address` is `http://HOST:PORT` or `https://HOST:PORT` and nothing more: other
    /// agents fetch from it, so no path, query, credentials or stray characters ride along.
    static func isPeerAddress(_ address: String) -> Bool {
        guard address.utf8.count <= 200 else { return false }
        let rest: Substring
        if address.hasPrefix("http://") {
            rest = address.dropFirst("http://".count)
        } else if address.hasPrefix("https://") {
            rest = address.dropFirst("https://".count)
        } else {
            return false
        }
        guard let endpoint = HostPort(parsing: String(rest)), (1...65535).contains(endpoint.port), !rest.hasPrefix(":") else { return false }
        let host = endpoint.host
        let isName = !host.isEmpty && host.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || byte == 0x2E || byte == 0x2D
        }
        let isV6 = rest.hasPrefix("[") && host.contains(":") && host.utf8.allSatisfy { byte in
            (0x30...0x39).contains(byte) || (0x41...0x46).contains(byte) || (0x61...0x66).contains(byte) || byte == 0x3A || byte == 0x2E
        }
        // HostPort accepts a port with a sign or leading zeros; the text must be the canonical form.
        return (isName || isV6) && endpoint.description == rest
    }
}

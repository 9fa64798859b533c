import Hummingbird
import Logging
import SpeedyClients
import SpeedyCore

/// How an internal role (chunkserver, chunkmaster, metaserver) protects its port: the cluster
/// secret every request must carry, and TLS; and how it calls its peers.
public struct RoleSecurity: Sendable {
    /// The secrets requests must carry one of (two while rotating); nil only when the operator
    /// chose `--insecure`. Re-read from their file on SIGHUP (``HTTPServer``).
    public var secrets: ClusterSecretRing?
    /// With a role table, each role holds its own secret (in ``secrets``) and the port lets each
    /// caller do only what its role may (``RouteAuthorization``); nil: one secret for every role.
    /// Re-read on SIGHUP, as the secrets are.
    public var roles: RoleTableFile?
    /// The secret the role sends now.
    public var secret: ClusterSecret? { secrets?.current }
    /// TLS and connection idle time.
    public var transport: ServerTransport
    /// How the role calls the other roles: the same secret, and the CA it trusts for their TLS.
    public var peers: ClusterTransport

    /// Creates the settings; without `peers`, the role calls its peers with `secret` over plain HTTP.
    public init(secret: ClusterSecret?, transport: ServerTransport = ServerTransport(), peers: ClusterTransport? = nil) {
        self.init(secrets: secret.map(ClusterSecretRing.init), transport: transport, peers: peers)
    }

    /// Creates the settings with a ring of secrets, which `peers` should send from too (without
    /// `peers`, the role calls its peers with the ring over plain HTTP).
    public init(
        secrets: ClusterSecretRing?, roles: RoleTableFile? = nil, transport: ServerTransport = ServerTransport(), peers: ClusterTransport? = nil
    ) {
        self.secrets = secrets
        self.roles = roles
        self.transport = transport
        var peers = peers ?? ClusterTransport(secrets: secrets)
        // With a role table the secret never leaves the host.
        peers.boundCredentials = roles != nil
        self.peers = peers
    }

    /// No secret and plain HTTP: what `--insecure` gives (and in-process tests).
    public static let insecure = RoleSecurity(secret: nil)

    /// Puts the credential check in front of every route of `router`, or says loudly that there is
    /// none. With a role table, `authorization` says which role may call which route (a route it
    /// does not name is the operator's alone). With `chunkTickets` (chunkservers), a chunk read may
    /// carry a chunk ticket instead (``ChunkTicketGate``): signed under the secret, or with a role
    /// table by an imageserver whose key the table lists.
    public func guardRoutes<Context: RemoteAddressRequestContext>(
        _ router: Router<Context>, role audience: ClusterRole, logger: Logger, authorization: RouteAuthorization? = nil,
        chunkTickets: Bool = false
    ) {
        let role = audience.rawValue
        if let secrets {
            var tickets: ChunkTicketGate?
            if chunkTickets { tickets = roles.map(ChunkTicketGate.init(roles:)) ?? ChunkTicketGate(secrets: secrets) }
            router.middlewares.add(
                ClusterSecretMiddleware<Context>(
                    secrets: secrets, audience: audience, roles: roles, authorization: authorization, logger: logger, tickets: tickets))
        } else {
            logger.critical(
                "INSECURE: the \(role) API asks for no cluster secret (--insecure); anyone who can reach its port can read, change and delete cluster data"
            )
        }
    }
}

import Hummingbird
import Logging
import SpeedyClients
import SpeedyCore

/// How an internal role (chunkserver, chunkmaster, metaserver) protects its port: the cluster
/// secret every request must carry, and TLS; and how it calls its peers.
public struct RoleSecurity: Sendable {
    /// The secret requests must carry; nil only when the operator chose `--insecure`.
    public var secret: ClusterSecret?
    /// TLS and connection idle time.
    public var transport: ServerTransport
    /// How the role calls the other roles: the same secret, and the CA it trusts for their TLS.
    public var peers: ClusterTransport

    /// Creates the settings; without `peers`, the role calls its peers with `secret` over plain HTTP.
    public init(secret: ClusterSecret?, transport: ServerTransport = ServerTransport(), peers: ClusterTransport? = nil) {
        self.secret = secret
        self.transport = transport
        self.peers = peers ?? ClusterTransport(secret: secret)
    }

    /// No secret and plain HTTP: what `--insecure` gives (and in-process tests).
    public static let insecure = RoleSecurity(secret: nil)

    /// Puts the secret check in front of every route of `router`, or says loudly that there is none.
    /// With `chunkTickets` (chunkservers), a chunk read may carry a chunk ticket signed under the
    /// secret instead (``ChunkTicketGate``).
    public func guardRoutes<Context: RemoteAddressRequestContext>(
        _ router: Router<Context>, role: String, logger: Logger, chunkTickets: Bool = false
    ) {
        if let secret {
            let tickets = chunkTickets ? ChunkTicketGate(key: ChunkTicketKey(secret: secret)) : nil
            router.middlewares.add(ClusterSecretMiddleware<Context>(secret: secret, logger: logger, tickets: tickets))
        } else {
            logger.critical(
                "INSECURE: the \(role) API asks for no cluster secret (--insecure); anyone who can reach its port can read, change and delete cluster data"
            )
        }
    }
}

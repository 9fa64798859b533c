import Hummingbird
import Logging
import SpeedyCore

/// How an internal role (chunkserver, chunkmaster, metaserver) protects its port: the cluster
/// secret every request must carry, and TLS.
public struct RoleSecurity: Sendable {
    /// The secret requests must carry; nil only when the operator chose `--insecure`.
    public var secret: ClusterSecret?
    /// TLS and connection idle time.
    public var transport: ServerTransport

    /// Creates the settings.
    public init(secret: ClusterSecret?, transport: ServerTransport = ServerTransport()) {
        self.secret = secret
        self.transport = transport
    }

    /// No secret and plain HTTP: what `--insecure` gives (and in-process tests).
    public static let insecure = RoleSecurity(secret: nil)

    /// Puts the secret check in front of every route of `router`, or says loudly that there is none.
    public func guardRoutes<Context: RemoteAddressRequestContext>(_ router: Router<Context>, role: String, logger: Logger) {
        if let secret {
            router.middlewares.add(ClusterSecretMiddleware<Context>(secret: secret, logger: logger))
        } else {
            logger.critical(
                "INSECURE: the \(role) API asks for no cluster secret (--insecure); anyone who can reach its port can read, change and delete cluster data"
            )
        }
    }
}

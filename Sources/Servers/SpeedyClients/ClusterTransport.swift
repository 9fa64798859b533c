import AsyncHTTPClient
import NIOCore
import NIOSSL
import SpeedyCore
import Synchronization

/// How a process talks to the cluster's internal APIs: the secret it sends, the private CA it
/// trusts for `https://` peers, whether bare `HOST:PORT` peers speak TLS, and who is acting.
///
/// A value, made once at start-up from a role's or a tool's flags and handed to every client it
/// makes (``ServiceClient``, ``MasterClient``, ``MetaClient``, ``ChunkServerClient``): what a
/// piece of code may call, and with which credential, is what it was given. Only the connection
/// pools are process-wide, one per CA file (see ``http``), as NIO's event loops are.
public struct ClusterTransport: Sendable {
    /// The secrets: the one sent to internal APIs, and (for a role) those its own port accepts;
    /// nil for none. A role's ring follows its secret file as SIGHUP re-reads it.
    public let secrets: ClusterSecretRing?
    /// The secret sent to internal APIs now, if any.
    public var secret: ClusterSecret? { secrets?.current }
    /// The PEM file of the private CA trusted for TLS peers (nil: the system's roots).
    public let caFile: String?
    /// Whether peers named by a bare `HOST:PORT` (chunkservers in the cluster map) are called
    /// over `https://`.
    public let internalTLS: Bool
    /// Who is acting (`user@host (tool)`), sent as `X-Speedy-Actor` so the master's event log
    /// says who made each administrative change.
    public let actor: String?
    /// Whether the role clients send a credential bound to the kind of port they call
    /// (``ClusterCredential``) rather than the secret itself: in a cluster with a role table,
    /// where the secret must never leave its host. Off with one shared secret, which every port
    /// of every version takes as it is.
    public var boundCredentials = false

    /// A transport with no secret, the system's trust roots and plain `http://` for bare
    /// addresses: what a client of the public registry API, or a test's anonymous caller, uses.
    public static let plain = ClusterTransport()

    /// Creates a transport without a CA file (nothing to check).
    public init(secret: ClusterSecret? = nil, internalTLS: Bool = false, actor: String? = nil) {
        self.secrets = secret.map(ClusterSecretRing.init)
        self.caFile = nil
        self.internalTLS = internalTLS
        self.actor = actor
    }

    /// Creates a transport that trusts the CA in `caFile`; fails at start-up, with the reason,
    /// when the file is not a PEM certificate, rather than on the first request.
    public init(secret: ClusterSecret?, caFile: String?, internalTLS: Bool = false, actor: String? = nil) throws {
        try self.init(secrets: secret.map(ClusterSecretRing.init), caFile: caFile, internalTLS: internalTLS, actor: actor)
    }

    /// Creates a transport without a CA file that sends the current secret of `secrets`.
    public init(secrets: ClusterSecretRing?, internalTLS: Bool = false, actor: String? = nil) {
        self.secrets = secrets
        self.caFile = nil
        self.internalTLS = internalTLS
        self.actor = actor
    }

    /// Creates a transport that sends the current secret of `secrets` (which a role reloads on
    /// SIGHUP) and trusts the CA in `caFile`; fails at start-up when the CA file is not PEM.
    public init(secrets: ClusterSecretRing?, caFile: String?, internalTLS: Bool = false, actor: String? = nil) throws {
        if let caFile { _ = try NIOSSLCertificate.fromPEMFile(caFile) }
        self.secrets = secrets
        self.caFile = caFile
        self.internalTLS = internalTLS
        self.actor = actor
    }

    private init(copying other: ClusterTransport, secret: ClusterSecret?) {
        self.secrets = secret.map(ClusterSecretRing.init)
        self.caFile = other.caFile
        self.internalTLS = other.internalTLS
        self.actor = other.actor
        self.boundCredentials = other.boundCredentials
    }

    /// The same transport without the secret (how a caller reaches a public endpoint, or shows
    /// that an internal one refuses strangers).
    public var anonymous: ClusterTransport { ClusterTransport(copying: self, secret: nil) }

    /// The same transport with another secret.
    public func with(secret: ClusterSecret?) -> ClusterTransport { ClusterTransport(copying: self, secret: secret) }

    /// `https` when the cluster's internal APIs speak TLS, else `http`.
    public var scheme: String { internalTLS ? "https" : "http" }

    /// `address` as a URL: a bare `HOST:PORT` gets this transport's ``scheme``.
    public func url(_ address: String) -> String { MasterLocation.normalize(address, scheme: scheme) }

    /// The HTTP client for requests to the cluster's APIs: `HTTPClient.shared`, or one that also
    /// trusts the CA. A refused connection is retried until the request's deadline, so a tool
    /// started next to a server that is still coming up waits for it.
    public var http: HTTPClient { SharedHTTPClients.control(caFile: caFile) }

    /// The HTTP client for the data path between chunkservers (a chain's next member).
    ///
    /// Unlike ``http`` it does not retry a refused connection until the request's deadline: a
    /// member that refuses is down, and the chunk should fail now so the imageserver writes it to
    /// another group. Nor does it cap connections per peer at a few, which chains could deadlock on.
    public var peerHTTP: HTTPClient { SharedHTTPClients.peer(caFile: caFile) }

    /// Makes `configuration` trust this transport's CA (no change without one).
    public func applyTLS(to configuration: inout HTTPClient.Configuration) {
        if let caFile { SharedHTTPClients.applyTLS(to: &configuration, caFile: caFile) }
    }
}

/// The process's connection pools, one per CA file and kind. They live as long as the process
/// (an `HTTPClient` must be shut down before it is released, and transports are values copied
/// freely), so a transport names its pool rather than owning it.
enum SharedHTTPClients {
    private struct Key: Hashable {
        var caFile: String?
        var peer: Bool
    }

    private static let clients = Mutex([Key: HTTPClient]())

    static func control(caFile: String?) -> HTTPClient {
        guard let caFile else { return HTTPClient.shared }
        return client(Key(caFile: caFile, peer: false)) {
            var configuration = HTTPClient.Configuration()
            applyTLS(to: &configuration, caFile: caFile)
            return configuration
        }
    }

    static func peer(caFile: String?) -> HTTPClient {
        client(Key(caFile: caFile, peer: true)) {
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(3)
            configuration.connectionPool.retryConnectionEstablishment = false
            // Far above what one peer's requests need: with the head rotating, forwards that wait
            // on the next member and forwards that end the chain share each pair's pool, and a cap
            // they fill could leave three members each waiting on the next. The requests a
            // chunkserver accepts bound the connections.
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4096
            if let caFile { applyTLS(to: &configuration, caFile: caFile) }
            return configuration
        }
    }

    private static func client(_ key: Key, _ configure: () -> HTTPClient.Configuration) -> HTTPClient {
        clients.withLock { pool in
            if let client = pool[key] { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configure())
            pool[key] = client
            return client
        }
    }

    static func applyTLS(to configuration: inout HTTPClient.Configuration, caFile: String) {
        var tls = TLSConfiguration.makeClientConfiguration()
        // As every Speedy server: nothing older than TLS 1.2 (NIOSSL's default floor is 1.0).
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .file(caFile)
        configuration.tlsConfiguration = tls
    }
}

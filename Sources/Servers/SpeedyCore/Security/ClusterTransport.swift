import AsyncHTTPClient
import NIOCore
import NIOSSL
import Synchronization

/// How this process talks to the cluster's internal APIs: the secret it sends and the private CA
/// it trusts for `https://` peers. Set once at start-up (by a role or a tool from its flags);
/// every ``ServiceClient`` made afterwards uses it unless told otherwise.
public enum ClusterTransport {
    private struct Settings {
        var secret: ClusterSecret?
        var caFile: String?
        var internalTLS = false
        var http: HTTPClient?
        var peerHTTP: HTTPClient?
        var actor: String?
    }

    private static let settings = Mutex(Settings())

    /// Sets the secret sent to internal APIs and the CA file trusted for TLS (nil: the system's
    /// roots). With `internalTLS`, peers named by a bare `HOST:PORT` (chunkservers in the cluster
    /// map) are called over `https://`.
    public static func configure(secret: ClusterSecret?, caFile: String? = nil, internalTLS: Bool = false) throws {
        if let caFile {
            // Fail at start-up, with the path, rather than on the first request.
            _ = try NIOSSLCertificate.fromPEMFile(caFile)
        }
        settings.withLock {
            $0.secret = secret
            $0.internalTLS = internalTLS
            if $0.caFile != caFile {
                $0.http = nil
                $0.peerHTTP = nil
            }
            $0.caFile = caFile
        }
    }

    /// Names who is acting (`user@host (tool)`), sent as `X-Speedy-Actor` with every request so the
    /// master's event log says who made each administrative change.
    public static func setActor(_ actor: String?) {
        settings.withLock { $0.actor = actor }
    }

    /// Who is acting, if a tool said so.
    public static var actor: String? { settings.withLock { $0.actor } }

    /// `https` when the cluster's internal APIs speak TLS, else `http`.
    public static var internalScheme: String { settings.withLock { $0.internalTLS } ? "https" : "http" }

    /// The secret sent to internal APIs, if any.
    public static var secret: ClusterSecret? { settings.withLock { $0.secret } }

    /// The process's shared HTTP client: `HTTPClient.shared`, or one that also trusts the CA.
    /// A refused connection is retried until the request's deadline, so a tool started next to
    /// a server that is still coming up waits for it.
    public static var http: HTTPClient {
        settings.withLock { state in
            guard let caFile = state.caFile else { return HTTPClient.shared }
            if let client = state.http { return client }
            var configuration = HTTPClient.Configuration()
            applyTLS(to: &configuration, caFile: caFile)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            state.http = client
            return client
        }
    }

    /// The HTTP client for the data path between chunkservers (a chain's next member).
    ///
    /// Unlike ``http`` it does not retry a refused connection until the request's deadline: a
    /// member that refuses is down, and the chunk should fail now so the imageserver writes it to
    /// another group. Nor does it cap connections per peer at a few, which chains could deadlock on.
    public static var peerHTTP: HTTPClient {
        settings.withLock { state in
            if let client = state.peerHTTP { return client }
            var configuration = HTTPClient.Configuration()
            configuration.timeout.connect = .seconds(3)
            configuration.connectionPool.retryConnectionEstablishment = false
            // Far above what one peer's requests need: with the head rotating, forwards that wait
            // on the next member and forwards that end the chain share each pair's pool, and a cap
            // they fill could leave three members each waiting on the next. The requests a
            // chunkserver accepts bound the connections.
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 4096
            if let caFile = state.caFile { applyTLS(to: &configuration, caFile: caFile) }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            state.peerHTTP = client
            return client
        }
    }

    /// Makes `configuration` trust the configured CA (no change without one).
    public static func applyTLS(to configuration: inout HTTPClient.Configuration) {
        if let caFile = settings.withLock({ $0.caFile }) { applyTLS(to: &configuration, caFile: caFile) }
    }

    private static func applyTLS(to configuration: inout HTTPClient.Configuration, caFile: String) {
        var tls = TLSConfiguration.makeClientConfiguration()
        // As every Speedy server: nothing older than TLS 1.2 (NIOSSL's default floor is 1.0).
        tls.minimumTLSVersion = .tlsv12
        tls.trustRoots = .file(caFile)
        configuration.tlsConfiguration = tls
    }
}

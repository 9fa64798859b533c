import Foundation
import HTTPTypes
import Hummingbird
@testable import ImageServer
import Logging
import NIOCore
import NIOSSL
import ServerSupport
import SpeedyCore
import Testing
import SpeedyTestSupport

/// A request context made without a connection, to drive a router in-process.
struct BareContext: RequestContext, RemoteAddressRequestContext {
    struct Source: RequestContextSource { var logger: Logger }
    var coreContext: CoreRequestContextStorage
    var remoteAddress: SocketAddress? { nil }
    init(source: Source) { coreContext = .init(source: source) }
}

/// Guards decide by the path the router routes (issue 20: `//metrics` and `/metrics/` reached
/// the registry's metrics without the cluster secret), checked against Hummingbird's own router.
@Suite("Guards see the routed path")
struct RoutedPathTests {
    /// Ways to spell `/metrics` (and near misses) as a request target.
    static let spellings = [
        "/metrics", "//metrics", "/metrics/", "/metrics//", "///metrics///", "/%6Detrics", "/%6detrics", "/metrics%2F",
        "/./metrics", "/x/../metrics", "/metrics/.", "/METRICS", "/Metrics", "/metrics?x=1", "/metrics?", "metrics", "/metrics;x",
        "/metrics#x", "http://h/metrics", "http://h//metrics/", "http://h:1//metrics", "/v2/../metrics", "/v2/..//metrics", "/ metrics",
    ]

    static let secret = ClusterSecret("the-cluster-secret-of-this-test")!

    /// What `router` answers to `GET path`: the status and the body.
    func get(_ router: Router<BareContext>, _ path: String, secret: ClusterSecret? = nil) async throws -> (status: Int, body: String) {
        var head = HTTPRequest(method: .get, scheme: nil, authority: "h", path: path)
        if let secret { head.headerFields[.authorization] = secret.authorization }
        let context = BareContext(source: .init(logger: Logger(label: "test")))
        let response = try await router.buildResponder().respond(to: Request(head: head, body: .init(buffer: ByteBuffer())), context: context)
        let collected = CollectingWriter.Box()
        try await response.body.write(CollectingWriter(box: collected))
        return (response.status.code, String(buffer: collected.buffer))
    }

    /// A router shaped like a role's: metrics, probes, the registry API, a token route.
    func router(guardedBy open: PublicPaths?) -> Router<BareContext> {
        let router = Router(context: BareContext.self)
        if let open { router.middlewares.add(ClusterSecretMiddleware(secret: Self.secret, audience: .chunkmaster, logger: Logger(label: "test"), open: open)) }
        router.get("/metrics") { _, _ in "metrics" }
        router.get("/healthz") { _, _ in "healthz" }
        router.get("/token") { _, _ in "token" }
        router.get("/v1/cluster") { _, _ in "cluster" }
        router.get("/v2/**") { _, _ in "v2" }
        return router
    }

    @Test func routedPathIsWhatTheRouterRoutes() async throws {
        let router = router(guardedBy: nil)
        let extra = ["//v1//cluster/", "/v2", "//v2//a/manifests/b", "/v2x", "/healthz/", "", "/"]
        for path in Self.spellings + extra {
            let uri = Request(head: HTTPRequest(method: .get, scheme: nil, authority: "h", path: path), body: .init(buffer: ByteBuffer())).uri
            let routed = RoutedPath.of(uri.path)
            let reply = try await get(router, path)
            let expected: String? =
                switch routed {
                case "/metrics": "metrics"
                case "/healthz": "healthz"
                case "/v1/cluster": "cluster"
                case _ where routed.hasPrefix("/v2/"): "v2"
                default: nil
                }
            if let expected {
                #expect(reply.status == 200 && reply.body == expected, "\(path) routed as \(routed), answered \(reply)")
            } else {
                #expect(reply.status == 404, "\(path) routed as \(routed) but answered \(reply)")
            }
        }
        #expect(RoutedPath.of("//metrics") == "/metrics")
        #expect(RoutedPath.of("/metrics/") == "/metrics")
        #expect(RoutedPath.of("/%6Detrics") == "/%6Detrics", "the router does not decode")
        #expect(RoutedPath.isWithin("/v2/x", "/v2") && RoutedPath.isWithin("/v2", "/v2") && !RoutedPath.isWithin("/v2x", "/v2"))
    }

    /// No spelling of `/metrics` reaches it without the secret, on the registry's port (whose
    /// API is public) or an internal role's; with the secret it is served; probes stay open.
    @Test func noSpellingOfMetricsPassesTheGuard() async throws {
        for open in [ImageServer.publicPaths, PublicPaths.probes] {
            let router = router(guardedBy: open)
            for path in Self.spellings {
                let reply = try await get(router, path)
                // `/v2/../metrics` is the registry API's to refuse (its dispatcher answers 404).
                let refused = [401, 403, 404].contains(reply.status) || reply.body == "v2"
                #expect(refused && reply.body != "metrics", "\(path) without the secret: \(reply)")
            }
            #expect(try await get(router, "/metrics", secret: Self.secret) == (200, "metrics"))
            #expect(try await get(router, "/metrics", secret: ClusterSecret("not-the-secret-at-all")!).status == 401)
            #expect(try await get(router, "//healthz/") == (200, "healthz"))
            // An internal role asks for the secret everywhere else, however spelled.
            #expect(try await get(router, "//v1//cluster/").status == 401)
        }
        let registry = router(guardedBy: ImageServer.publicPaths)
        #expect(try await get(registry, "//v2//a/tags/list") == (200, "v2"))
        #expect(try await get(registry, "/token") == (200, "token"))
        #expect(try await get(registry, "/v1/cluster").status == 401, "a route the registry does not name as public asks for the secret")
    }

    /// `--tls-min-version` sets the floor, and TLS 1.2 offers ECDHE with AES-GCM or ChaCha20 only.
    @Test func tlsConfigurationHasAFloorAndModernCiphers() throws {
        let temporary = try TemporaryDirectory("tls")
        defer { temporary.remove() }
        let dir = temporary.path
        let files = try LocalCertificateAuthority.make(publicDirectory: dir + "/public", privateDirectory: dir + "/private")
        let pem = ServerTransport.TLSFiles(certificate: files.serverCertificate, key: files.serverKey)
        let standard = try ServerTransport(tls: pem).tlsConfiguration(pem)
        #expect(standard.minimumTLSVersion == .tlsv12)
        #expect(try ServerTransport(tls: pem, tlsMinimumVersion: .v1_3).tlsConfiguration(pem).minimumTLSVersion == .tlsv13)
        let expected: Set<NIOTLSCipher> = [
            .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        ]
        #expect(Set(standard.cipherSuiteValues) == expected, "\(standard.cipherSuiteValues)")
        #expect(TLSMinimumVersion(rawValue: "1.1") == nil && TLSMinimumVersion(rawValue: "1.2") == .v1_2)
    }
}

/// Collects a response body in memory (in `box`: the writer itself is consumed).
struct CollectingWriter: ResponseBodyWriter {
    final class Box { var buffer = ByteBuffer() }
    let box: Box
    mutating func write(_ buffer: ByteBuffer) async throws { box.buffer.writeImmutableBuffer(buffer) }
    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

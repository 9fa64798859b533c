import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SpeedyCore
import UnixSignals

/// Runs a role's HTTP API with its background services until SIGINT or SIGTERM, then shuts
/// everything down in order (the HTTP server first, so no request is cut mid-way).
public enum HTTPServer {
    /// Starts `router` on `listen` next to `services`, over TLS when `transport` has a certificate.
    /// On SIGHUP it re-reads the cluster secret file behind `secrets`, the role table behind
    /// `roles`, and the TLS certificate and
    /// key (``CredentialReloader``), so both rotate without a restart, then runs `onHangup` (the
    /// role's own files: the imageserver's users, access rules and token keys).
    ///
    /// - Parameter onListening: called with the bound address once the socket is listening
    ///   (with port 0 the system picks the port, and this is how the role learns it).
    public static func run<Context: RequestContext>(
        role: String,
        router: Router<Context>,
        listen: HostPort,
        transport: ServerTransport = ServerTransport(),
        secrets: ClusterSecretRing? = nil,
        roles: RoleTableFile? = nil,
        onHangup: @escaping @Sendable () async -> Void = {},
        services: [any Service] = [],
        logger: Logger,
        onListening: @escaping @Sendable (HostPort) async -> Void = { _ in }
    ) async throws where Context.Source == ApplicationRequestContextSource {
        let certificate = try transport.tls.map { try ServerCertificate(files: $0, transport: transport) }
        let reloader = CredentialReloader(
            role: role, secrets: secrets, roles: roles, certificate: certificate, then: onHangup, logger: logger)
        let app = Application(
            router: router,
            server: transport.serverBuilder(certificate: certificate),
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "speedy-\(role)"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                let bound = HostPort(host: listen.host, port: port)
                logger.notice("speedy \(role) listening on \(bound)\(transport.tls == nil ? "" : " (TLS)")")
                await onListening(bound)
            },
            logger: logger
        )
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: app), .init(service: reloader)] + services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A request still running after this long is cancelled rather than holding the exit.
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
    }
}

/// How a role's HTTP server meets its clients: TLS or not, and how long an idle keep-alive
/// connection may stay open.
public struct ServerTransport: Sendable {
    /// PEM files of the certificate chain and its private key.
    public struct TLSFiles: Sendable, Equatable {
        public var certificate: String
        public var key: String
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// Serve HTTPS with these files; nil serves plain HTTP.
    public var tls: TLSFiles?
    /// The oldest TLS version the port accepts (`--tls-min-version`).
    public var tlsMinimumVersion: TLSMinimumVersion
    /// A connection with no request in progress for this long is closed (so idle sockets cannot
    /// pile up); a slow request body is bounded separately, by the role.
    public var idleTimeout: Duration
    /// Where a route's file-range responses are registered (``FileRegionResponses``); used on
    /// plain HTTP only, since TLS encrypts every byte in the process.
    public var fileRegions: FileRegionResponses?
    /// Connections per client and the request head's deadline.
    public var connectionLimits: ConnectionLimits

    /// Creates a transport; the defaults serve plain HTTP (TLS 1.2 and newer once given files),
    /// close connections idle for 60 s and keep ``ConnectionLimits``' defaults.
    public init(
        tls: TLSFiles? = nil, tlsMinimumVersion: TLSMinimumVersion = .v1_2, idleTimeout: Duration = .seconds(60),
        connectionLimits: ConnectionLimits = ConnectionLimits()
    ) {
        self.tls = tls
        self.tlsMinimumVersion = tlsMinimumVersion
        self.idleTimeout = idleTimeout
        self.connectionLimits = connectionLimits
    }

    /// The TLS 1.2 cipher suites every TLS port offers: ECDHE key exchange (forward secrecy) with
    /// AES-GCM or ChaCha20-Poly1305, nothing else (no CBC, no RSA key exchange, no SHA-1 MACs).
    /// TLS 1.3's suites are all of that kind already, and BoringSSL does not let them be chosen.
    public static let tls12CipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// The server side of TLS with `files`: NIOSSL's defaults would accept TLS 1.0 and 1.1 and
    /// CBC suites, so the version floor and the cipher list are always set here.
    public func tlsConfiguration(_ files: TLSFiles) throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(files.certificate).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: files.key, format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = tlsMinimumVersion.nioVersion
        configuration.cipherSuites = Self.tls12CipherSuites
        return configuration
    }

    func serverBuilder(certificate: ServerCertificate?) -> HTTPServerBuilder {
        let idleTimeout = idleTimeout
        // TLS encrypts every byte in the process, so file regions go out on plain HTTP only.
        let regions = certificate == nil ? fileRegions : nil
        let connections = ClientConnections(limits: connectionLimits)
        return HTTPServerBuilder { responder in
            SpeedyHTTP1Channel(responder: responder, idleTimeout: idleTimeout, tls: certificate, regions: regions, connections: connections)
        }
    }
}

/// The oldest TLS version a role's port accepts: 1.2 unless `--tls-min-version 1.3` asks for more.
/// TLS 1.0 and 1.1 are never offered (weak MACs and ciphers, deprecated by RFC 8996).
public enum TLSMinimumVersion: String, Sendable, CaseIterable {
    case v1_2 = "1.2"
    case v1_3 = "1.3"

    /// The NIOSSL version it stands for.
    public var nioVersion: TLSVersion {
        switch self {
        case .v1_2: .tlsv12
        case .v1_3: .tlsv13
        }
    }
}

/// A background loop that runs `body` every `interval` until graceful shutdown.
public struct PeriodicTask: Service {
    let name: String
    let interval: Duration
    let body: @Sendable () async -> Void

    /// Creates a loop; `body` should not throw, log instead, since one failure must not stop the loop.
    public init(name: String, interval: Duration, body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.interval = interval
        self.body = body
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await body()
            // Graceful shutdown is not cancellation: wake the sleep for it explicitly.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Reads `Logger` levels from `SPEEDY_LOG_LEVEL` (trace … critical; default info) and the
/// format from `SPEEDY_LOG_FORMAT` (`text` or `json`, one object a line).
public func makeLogger(label: String) -> Logger {
    LogFormat.bootstrapOnce()
    var logger = Logger(label: label)
    let level = ProcessInfo.processInfo.environment["SPEEDY_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:))
    logger.logLevel = level ?? .info
    return logger
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

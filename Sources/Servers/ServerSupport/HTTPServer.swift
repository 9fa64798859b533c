import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SpeedyCore
import UnixSignals

/// Runs a role's HTTP API with its background services until SIGINT or SIGTERM, then shuts
/// everything down in order (the HTTP server first, so no request is cut mid-way).
public enum HTTPServer {
    /// Starts `router` on `listen` next to `services`.
    ///
    /// - Parameter onListening: called with the bound address once the socket is listening
    ///   (with port 0 the system picks the port, and this is how the role learns it).
    public static func run(
        role: String,
        router: Router<BasicRequestContext>,
        listen: HostPort,
        services: [any Service] = [],
        logger: Logger,
        onListening: @escaping @Sendable (HostPort) async -> Void = { _ in }
    ) async throws {
        let app = Application(
            router: router,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: "speedy-\(role)"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? listen.port
                let bound = HostPort(host: listen.host, port: port)
                logger.notice("speedy \(role) listening on \(bound)")
                await onListening(bound)
            },
            logger: logger
        )
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: app)] + services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        // A request still running after this long is cancelled rather than holding the exit.
        configuration.maximumGracefulShutdownDuration = .seconds(10)
        let group = ServiceGroup(configuration: configuration)
        try await group.run()
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

/// Reads `Logger` levels from `SPEEDY_LOG_LEVEL` (trace … critical; default info).
public func makeLogger(label: String) -> Logger {
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

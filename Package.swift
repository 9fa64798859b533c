// swift-tools-version:6.1
import PackageDescription

/// Settings every Speedy target shares: Swift 6 language mode with the upcoming features
/// that keep module boundaries honest.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "speedy",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "speedy", targets: ["SpeedyCommand"]),
        .executable(name: "chunktool", targets: ["ChunkTool"]),
        .executable(name: "transfer", targets: ["Transfer"]),
        .executable(name: "speedy-bench", targets: ["SpeedyBench"]),
        .executable(name: "speedy-console", targets: ["SpeedyConsole"]),
        // For Tests/Fuzz's own package, which builds the parsers with libFuzzer's instrumentation.
        .library(name: "ParserFuzzing", targets: ["ParserFuzzing"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // MARK: Shared core
        // CSpeedy: CRC-32C and SHA-256 in C (OpenSSL's libcrypto), optimized even in debug builds.
        // Its unsafe flag is why no target here is offered as a library product to other packages.
        .target(
            name: "CSpeedy",
            path: "Sources/Servers/CSpeedy",
            cSettings: [.unsafeFlags(["-O2"])],
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        // SpeedyCore: the vocabulary every process shares (wire types, error codes, chunk keys, image
        // metadata records, checksums, the parsers of request input) and no I/O but files: what
        // NIOCore is to NIO. Kept free of server frameworks, so its parsers can be fuzzed alone.
        .target(
            name: "SpeedyCore",
            dependencies: [
                "CSpeedy",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/Servers/SpeedyCore",
            swiftSettings: swiftSettings
        ),
        // SpeedyClients: the HTTP clients of every role's API, each given a ClusterTransport value.
        .target(
            name: "SpeedyClients",
            dependencies: [
                "SpeedyCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Servers/SpeedyClients",
            swiftSettings: swiftSettings
        ),
        // RegistryClient: a client of other registries' OCI Distribution API (logins, tokens,
        // digests checked), for the pull-through cache and replication.
        .target(
            name: "RegistryClient",
            dependencies: [
                "SpeedyCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Servers/RegistryClient",
            swiftSettings: swiftSettings
        ),
        // Replication: copying repositories between registries by rules (`chunktool sync`, and
        // the metaserver's scheduled sync jobs).
        .target(
            name: "Replication",
            dependencies: ["RegistryClient", "SpeedyCore"],
            path: "Sources/Servers/Replication",
            swiftSettings: swiftSettings
        ),
        // SpeedyPostgres: PostgreSQL connections, transactions and migrations, for the master and
        // the metaserver only.
        .target(
            name: "SpeedyPostgres",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Servers/SpeedyPostgres",
            swiftSettings: swiftSettings
        ),
        // ServerSupport: what every role's server shares (HTTP server, TLS, secret middleware,
        // health, metrics, logs, heartbeats to the master).
        .target(
            name: "ServerSupport",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "CSpeedy",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Servers/ServerSupport",
            swiftSettings: swiftSettings
        ),
        // MARK: Storage engine
        .target(
            name: "ChunkStorage",
            dependencies: [
                "SpeedyCore",
                "CSpeedy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Servers/ChunkStorage",
            swiftSettings: swiftSettings
        ),
        // MARK: Roles
        .target(
            name: "ChunkServer",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "ServerSupport",
                "ChunkStorage",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Servers/ChunkServer",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ChunkMaster",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "SpeedyPostgres",
                "ServerSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/Servers/ChunkMaster",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MetaServer",
            dependencies: [
                "RegistryClient",
                "Replication",
                "SpeedyCore",
                "SpeedyClients",
                "SpeedyPostgres",
                "GarbageCollection",
                "ServerSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Sources/Servers/MetaServer",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "GarbageCollection",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/Servers/GarbageCollection",
            swiftSettings: swiftSettings
        ),
        // RegistryTokens: the registry's bearer tokens (HS256 JWTs), issued and checked by every
        // imageserver; its own module so the token parser can be fuzzed without the server.
        .target(
            name: "RegistryTokens",
            dependencies: [
                "SpeedyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Sources/Servers/RegistryTokens",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "ImageServer",
            dependencies: [
                "RegistryClient",
                "RegistryTokens",
                "SpeedyCore",
                "SpeedyClients",
                "ServerSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Servers/ImageServer",
            swiftSettings: swiftSettings
        ),
        // PeerAgent: `speedy peer`, the node agent on a client host: a pull-only registry mirror
        // that reads blobs as chunks straight from the chunkservers (with the registry's tickets,
        // never the cluster secret) into a bounded disk cache. It knows the registry only over HTTP.
        .target(
            name: "PeerAgent",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "ServerSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Servers/PeerAgent",
            swiftSettings: swiftSettings
        ),
        // Tracker: `speedy tracker`, the directory of the node agents' swarm: who holds which chunks
        // of which blob, in memory only, every request signed with the peer secret. Like PeerAgent
        // it knows no other role's code.
        .target(
            name: "Tracker",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "ServerSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            path: "Sources/Servers/Tracker",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SpeedyCommand",
            dependencies: [
                "RegistryClient",
                "SpeedyCore",
                "SpeedyClients",
                "SpeedyPostgres",
                "ChunkServer",
                "ChunkMaster",
                "MetaServer",
                "ImageServer",
                "PeerAgent",
                "Tracker",
                "ServerSupport",
                "CommandLineSupport",
                // For the chunkserver's volume options and `speedy up --gc-every`.
                "ChunkStorage",
                "GarbageCollection",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/Servers/SpeedyCommand",
            swiftSettings: swiftSettings
        ),
        // MARK: Console
        .systemLibrary(
            name: "CNcurses",
            path: "Sources/Console/CNcurses",
            providers: [.apt(["libncurses-dev"])]
        ),
        .target(
            name: "ConsoleModel",
            dependencies: ["SpeedyCore"],
            path: "Sources/Console/ConsoleModel",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SpeedyConsole",
            dependencies: [
                "CNcurses",
                "ConsoleModel",
                "SpeedyCore",
                "SpeedyClients",
                "ToolSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Console/SpeedyConsole",
            swiftSettings: swiftSettings
        ),
        // MARK: Tools
        // CommandLineSupport: the contract every executable keeps with its shell (exit codes 0, 1
        // and 2, how an error prints, argument types such as durations).
        .target(
            name: "CommandLineSupport",
            dependencies: [
                "SpeedyCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Tools/CommandLineSupport",
            swiftSettings: swiftSettings
        ),
        // ToolSupport: what the client tools share (master and cluster options, progress, job reports).
        .target(
            name: "ToolSupport",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "CommandLineSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Tools/ToolSupport",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "ChunkTool",
            dependencies: [
                "RegistryClient",
                "Replication",
                "SpeedyCore",
                "SpeedyClients",
                "GarbageCollection",
                "CommandLineSupport",
                "ToolSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Tools/ChunkTool",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "Transfer",
            dependencies: [
                "SpeedyCore",
                "SpeedyClients",
                "CommandLineSupport",
                "ToolSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Tools/Transfer",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "SpeedyBench",
            dependencies: [
                "SpeedyCore",
                "ChunkStorage",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/Tools/SpeedyBench",
            swiftSettings: swiftSettings
        ),
        // MARK: Tests
        // What the test targets share: temporary directories, free ports, running programs, a private PostgreSQL.
        .target(
            name: "SpeedyTestSupport",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Tests/SpeedyTestSupport",
            swiftSettings: swiftSettings
        ),
        // ParserFuzzing: one fuzz target per parser of request input, run by the tests on the
        // corpus in Tests/Fuzz/corpus and by libFuzzer through Tests/Fuzz/run.
        .target(
            name: "ParserFuzzing",
            dependencies: [
                "RegistryTokens", "SpeedyCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            path: "Tests/Fuzz/ParserFuzzing",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ReplicationTests",
            dependencies: ["Replication", "SpeedyCore"],
            path: "Tests/ReplicationTests",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChunkStorageTests",
            dependencies: ["ChunkStorage", "SpeedyCore", "SpeedyTestSupport", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChunkServerTests",
            dependencies: [
                "ChunkServer", "ChunkStorage", "ServerSupport", "SpeedyClients", "SpeedyCore", "SpeedyTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ChunkMasterTests",
            dependencies: [
                "ChunkMaster", "ServerSupport", "SpeedyCore", "SpeedyPostgres", "SpeedyTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MetaServerTests",
            dependencies: [
                "MetaServer", "ServerSupport", "SpeedyCore", "SpeedyClients", "SpeedyPostgres", "SpeedyTestSupport",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ImageServerTests",
            dependencies: [
                "ImageServer", "ChunkMaster", "ParserFuzzing", "RegistryClient", "RegistryTokens", "ServerSupport", "SpeedyCore", "SpeedyClients",
                "SpeedyTestSupport",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "TrackerTests",
            dependencies: [
                "Tracker", "PeerAgent", "ServerSupport", "SpeedyCore", "SpeedyClients", "SpeedyTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ConsoleModelTests",
            dependencies: ["ConsoleModel", "SpeedyCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: [
                "ParserFuzzing",
                "ServerSupport",
                "SpeedyCore",
                "SpeedyClients",
                "GarbageCollection",
                "SpeedyTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)

// swift-tools-version:6.1
import PackageDescription

// The parsers of request input built for libFuzzer: coverage-guided, with AddressSanitizer.
// Built by Tests/Fuzz/run, which passes the flag every module must be compiled with:
//   swift build -Xswiftc -sanitize=fuzzer,address
// Its own package, so the flags reach only SpeedyCore and what it needs, never the servers.
let package = Package(
    name: "speedy-fuzz",
    products: [
        .executable(name: "speedy-fuzz", targets: ["SpeedyFuzz"]),
    ],
    dependencies: [
        .package(name: "speedy", path: "../.."),
    ],
    targets: [
        .target(name: "CFuzzerDriver", path: "Sources/CFuzzerDriver"),
        .executableTarget(
            name: "SpeedyFuzz",
            dependencies: ["CFuzzerDriver", .product(name: "ParserFuzzing", package: "speedy")],
            path: "Sources/SpeedyFuzz"
        ),
    ]
)

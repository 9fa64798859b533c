import ArgumentParser
import Foundation
import PeerAgent
import ServerSupport
import SpeedyCore
import CommandLineSupport

/// `speedy peer`: the node agent, a pull-only registry mirror on a client host.
struct PeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Run the node agent: a pull-only registry mirror for this host that reads blobs straight from the chunkservers.",
        discussion: """
            Point this host's docker, podman, containerd or skopeo at --listen as a registry mirror \
            (docs/peer.md). Manifests, tags and every authorization come from --registry, with the \
            client's own credentials; a blob is served only after the registry said that client may \
            pull it, then from the cache, else as chunks read straight from the chunkservers with \
            the per-chunk tickets the registry hands out (no cluster secret here), else from the \
            registry. Every chunk is checked against its CRC-32C and every blob against its digest \
            before its response ends. Pushes and deletes are refused (405 UNSUPPORTED): push to \
            the registry. /metrics and /healthz are served on the same port.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT (keep it on loopback: the agent serves this host).")
    var listen = HostPort(host: "127.0.0.1", port: 6789)

    @Option(help: ArgumentHelp("Base URL of the registry (an imageserver), e.g. https://registry.example:6788.", valueName: "url"))
    var registry: String

    @Option(help: ArgumentHelp("Directory of the blob cache; it survives restarts.", valueName: "dir"))
    var cache = "./speedy-peer-cache"

    @Option(help: "Most bytes the cache keeps; the least recently used blobs go first.")
    var cacheSize = SizeArgument(bytes: 20 << 30)

    @Option(help: ArgumentHelp("PEM file of the CA trusted for the registry's and the chunkservers' TLS (default: the system's roots).", valueName: "file"))
    var ca: String?

    @Option(help: ArgumentHelp("Chunks read ahead of the one being sent.", valueName: "n"))
    var chunkWindow = 4

    @Flag(help: "Read blobs through the registry's blob GET instead of from the chunkservers (a host that cannot reach them); still cached and checked.")
    var blobsFromRegistry = false

    func validate() throws {
        guard let url = URL(string: registry), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ValidationError("--registry must be an http:// or https:// URL")
        }
        guard (1...64).contains(chunkWindow) else { throw ValidationError("--chunk-window must be between 1 and 64") }
        if let ca, !FileManager.default.isReadableFile(atPath: ca) { throw ValidationError("--ca \(ca): no such readable file") }
    }

    func run() async throws {
        var configuration = PeerAgentConfiguration(
            listen: listen, registryURL: registry, cacheDirectory: cache, cacheBytes: cacheSize.bytes, caFile: ca)
        configuration.chunkWindow = chunkWindow
        configuration.blobsFromRegistry = blobsFromRegistry
        try await PeerAgent.run(configuration)
    }
}

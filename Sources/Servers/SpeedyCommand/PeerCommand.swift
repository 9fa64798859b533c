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

            With --tracker, --peer-listen and --peer-secret-file the agent joins a swarm: it \
            announces the chunks it holds to the tracker (speedy tracker), reads chunks from other \
            agents that hold them before it asks the chunkservers, fetching the chunks fewest \
            peers have first, and serves what it has (even mid-download) to the others on \
            --peer-listen, at most --upload-rate bytes a second. Requests between agents are \
            signed with the peer secret.
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

    @Option(help: ArgumentHelp("How long a chunkserver or peer may take to start answering a chunk request, or stall mid-chunk, before the next source is tried.", valueName: "duration"))
    var chunkTimeout = DurationArgument(.seconds(5))

    @Option(help: ArgumentHelp("How long a client may send or take next to nothing (under 16 KiB) mid-request, or leave a request half sent, before its connection is closed.", valueName: "duration"))
    var clientIdleTimeout = DurationArgument(.seconds(30))

    @Option(help: ArgumentHelp("Base URL of the tracker (speedy tracker) that joins this agent to the swarm.", valueName: "url"))
    var tracker: String?

    @Option(help: ArgumentHelp("Address other agents read chunks from, HOST:PORT (needs --tracker).", valueName: "host:port"))
    var peerListen: HostPort?

    @Option(help: ArgumentHelp("URL announced to other agents for --peer-listen (default: http://HOST:PORT of --peer-listen).", valueName: "url"))
    var peerAdvertise: String?

    @Option(help: ArgumentHelp("File holding the peer secret shared by the tracker and every agent of the swarm.", valueName: "file"))
    var peerSecretFile: String?

    @Option(help: ArgumentHelp("Most bytes a second sent to other agents, e.g. 50M (default: no bound).", valueName: "size"))
    var uploadRate: SizeArgument?

    @Flag(help: "Read blobs through the registry's blob GET instead of from the chunkservers (a host that cannot reach them); still cached and checked.")
    var blobsFromRegistry = false

    func validate() throws {
        guard let url = URL(string: registry), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else {
            throw ValidationError("--registry must be an http:// or https:// URL")
        }
        guard (1...64).contains(chunkWindow) else { throw ValidationError("--chunk-window must be between 1 and 64") }
        if let ca, !FileManager.default.isReadableFile(atPath: ca) { throw ValidationError("--ca \(ca): no such readable file") }
        guard (1...300).contains(chunkTimeout.duration.components.seconds) else { throw ValidationError("--chunk-timeout must be between 1s and 5m") }
        guard clientIdleTimeout.duration >= .seconds(1), clientIdleTimeout.duration <= .seconds(3600) else {
            throw ValidationError("--client-idle-timeout must be between 1s and 1h")
        }
        let swarmOptions = [tracker != nil, peerListen != nil, peerSecretFile != nil]
        guard swarmOptions.allSatisfy({ $0 }) || swarmOptions.allSatisfy({ !$0 }) else {
            throw ValidationError("--tracker, --peer-listen and --peer-secret-file go together (all three join the swarm)")
        }
        if peerListen == nil, peerAdvertise != nil || uploadRate != nil {
            throw ValidationError("--peer-advertise and --upload-rate need --tracker, --peer-listen and --peer-secret-file")
        }
        if let tracker, !Self.isHTTPURL(tracker) { throw ValidationError("--tracker must be an http:// or https:// URL") }
        if let peerAdvertise, !Self.isHTTPURL(peerAdvertise) { throw ValidationError("--peer-advertise must be an http:// or https:// URL") }
        if let peerListen, peerAdvertise == nil, ["0.0.0.0", "::"].contains(peerListen.host) {
            throw ValidationError("--peer-listen \(peerListen) listens everywhere: say with --peer-advertise which URL other agents use")
        }
        if let uploadRate, uploadRate.bytes < 64 << 10 { throw ValidationError("--upload-rate must be at least 64K (bytes a second)") }
        if let peerSecretFile { _ = try loadPeerSecret(peerSecretFile) }
    }

    /// The peer secret in `path`, or a usage error naming the flag and what is wrong with the file.
    private func loadPeerSecret(_ path: String) throws -> ClusterSecret {
        do {
            return try ClusterSecret.loadOne(path: path)
        } catch .unreadable(_, let reason) {
            throw ValidationError("--peer-secret-file \(path): cannot read it: \(reason)")
        } catch .count(_, let found) {
            throw ValidationError("--peer-secret-file \(path): it holds \(found) lines; the peer secret is one line")
        } catch .weak {
            throw ValidationError("--peer-secret-file \(path): the peer secret must be at least \(ClusterSecret.minimumLength) printable characters without spaces")
        }
    }

    private static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil else { return false }
        return url.path.isEmpty || url.path == "/"
    }

    func run() async throws {
        var configuration = PeerAgentConfiguration(
            listen: listen, registryURL: registry, cacheDirectory: cache, cacheBytes: cacheSize.bytes, caFile: ca)
        configuration.chunkWindow = chunkWindow
        configuration.blobsFromRegistry = blobsFromRegistry
        configuration.chunkTimeout = chunkTimeout.duration
        configuration.clientIdleTimeout = clientIdleTimeout.duration
        if let tracker, let peerListen, let peerSecretFile {
            let secret = try loadPeerSecret(peerSecretFile)
            let advertise = peerAdvertise ?? "http://\(peerListen)"
            configuration.swarm = SwarmConfiguration(
                trackerURL: tracker.hasSuffix("/") ? String(tracker.dropLast()) : tracker, peerListen: peerListen,
                advertiseURL: advertise.hasSuffix("/") ? String(advertise.dropLast()) : advertise, secret: secret,
                uploadBytesPerSecond: uploadRate?.bytes)
        }
        try await PeerAgent.run(configuration)
    }
}

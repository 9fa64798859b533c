import ArgumentParser
import CommandLineSupport
import Foundation
import ServerSupport
import SpeedyClients
import SpeedyCore
import Tracker

/// `speedy tracker`: the directory node agents find each other through.
struct TrackerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracker",
        abstract: "Run the tracker: node agents announce the chunks they hold and ask who holds a blob's chunks.",
        discussion: """
            Agents (speedy peer) sign every request with the peer secret (--peer-secret-file, the same \
            file on every agent), so a stranger can neither announce itself nor learn who holds what. \
            The swarm lives in memory only: after a restart the agents' next full announces (at \
            start and every --announce-interval) bring it back, and an agent silent for three \
            intervals is forgotten. With --master it heartbeats to the chunkmaster, carrying the \
            swarm's size and rates for `chunktool status` and the console; that, and /metrics \
            without a peer signature, take the cluster secret.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "0.0.0.0", port: 6790)

    @Option(help: ArgumentHelp("File holding the peer secret every agent signs its requests with (at least 16 printable characters; 32 random bytes in hex are best).", valueName: "path"))
    var peerSecretFile: String

    @Option(help: "How often agents send a full announce; an agent silent for three intervals is forgotten.")
    var announceInterval = DurationArgument(.seconds(15))

    @Option(help: "Base URL of the chunkmaster to heartbeat to, with the swarm's figures (default: $SPEEDY_MASTER; without either, no heartbeats).")
    var master: String?

    @Option(help: ArgumentHelp("The id this tracker reports to the master (default: tracker@HOST:PORT).", valueName: "id"))
    var id: String?

    @OptionGroup var security: RoleSecurityOptions

    /// Whether a master was named, by the flag or the environment.
    private var masterNamed: Bool {
        master != nil || !(ProcessInfo.processInfo.environment[MasterLocation.environmentVariable] ?? "").isEmpty
    }

    func validate() throws {
        let seconds = announceInterval.duration.components.seconds
        guard (1...3600).contains(seconds), announceInterval.duration == .seconds(seconds) else {
            throw ValidationError("--announce-interval must be whole seconds, from 1s to 1h")
        }
        if listen.port == 0 { throw ValidationError("--listen needs a port: agents are told where the tracker is") }
        _ = try loadPeerSecret()
    }

    /// The peer secret, or a usage error that names the flag and what is wrong with the file.
    private func loadPeerSecret() throws -> ClusterSecret {
        do {
            return try ClusterSecret.loadOne(path: peerSecretFile)
        } catch .unreadable(_, let reason) {
            throw ValidationError("--peer-secret-file \(peerSecretFile): cannot read it: \(reason)")
        } catch .count(_, let found) {
            throw ValidationError("--peer-secret-file \(peerSecretFile): it holds \(found) lines; the peer secret is one line")
        } catch .weak {
            throw ValidationError(
                "--peer-secret-file \(peerSecretFile): the peer secret must be at least \(ClusterSecret.minimumLength) printable characters without spaces")
        }
    }

    func run() async throws {
        let peerSecret = try loadPeerSecret()
        // The cluster secret matters only for the master and /metrics: a tracker of its own needs none.
        let roleSecurity: RoleSecurity
        if masterNamed || security.secretPath != nil || security.insecure {
            roleSecurity = try security.resolve(role: "tracker", talksToMaster: masterNamed, masterFlag: master)
        } else {
            roleSecurity = RoleSecurity(secret: nil, transport: security.serverTransport(role: "tracker"))
        }
        var configuration = TrackerConfiguration(
            listen: listen, peerSecret: peerSecret, announceInterval: announceInterval.duration, security: roleSecurity)
        configuration.id = id
        if masterNamed { configuration.masterURL = MasterLocation.resolve(flag: master, scheme: roleSecurity.peers.scheme) }
        try await Tracker.run(configuration)
    }
}

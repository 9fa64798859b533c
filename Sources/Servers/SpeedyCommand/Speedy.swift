import ArgumentParser
import ChunkMaster
import ChunkServer
import ChunkStorage
import Dispatch
import Foundation
import NIOCore
import NIOPosix
import ServerSupport
import SpeedyPostgres
import SpeedyClients
import SpeedyCore
import CommandLineSupport

/// Starts `speedy`. The roles on the data path run their tasks on NIO's event loops rather than
/// on a second pool of threads: a chunk's bytes then go from socket to handler and on without a
/// thread hop per piece, which on two cores cost more CPU than the copying itself. It has to be
/// set before any task runs, so it is decided here from the role's name.
@main
enum SpeedyMain {
    static let dataPathRoles: Set<String> = ["chunkserver", "imageserver", "peer"]

    static func main() {
        // SIGHUP asks a role to re-read its secrets and certificates (CredentialReloader), which
        // can only trap it once the role runs: until then its default would end the process.
        signal(SIGHUP, SIG_IGN)
        if let role = CommandLine.arguments.dropFirst().first, dataPathRoles.contains(role) {
            _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
        Task {
            // Usage errors exit 2, as every Speedy command's do (ArgumentParser's own code is 64).
            await ToolExit.main(Speedy.self)
            exit(0)
        }
        dispatchMain()
    }
}

/// `speedy`: every server role of the cluster, and `speedy up` for a whole local cluster.
struct Speedy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedy",
        abstract: "Speedy, a distributed chunk store for container images.",
        discussion: """
            Start the roles in this order: chunkmaster, chunkservers (one per disk, a group of three \
            normally), metaserver, imageservers. For a whole cluster on this machine, `speedy up` \
            starts them all. On client hosts, `speedy peer` is the node agent (docs/peer.md), and \
            agents find each other through `speedy tracker`.
            """,
        subcommands: [Up.self, ChunkMasterCommand.self, ChunkServerCommand.self, MetaServerCommand.self, ImageServerCommand.self, PeerCommand.self, TrackerCommand.self, Htpasswd.self, Certificates.self, Credentials.self]
    )
}

extension HostPort: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// A byte size on the command line: `1G`, `512M`, `4096`.
struct SizeArgument: ExpressibleByArgument, Sendable {
    let bytes: UInt64
    init?(argument: String) {
        guard let bytes = ByteSize.parse(argument) else { return nil }
        self.bytes = bytes
    }
    init(bytes: UInt64) { self.bytes = bytes }
    var defaultValueDescription: String { ByteSize.format(bytes) }
}

struct ChunkMasterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chunkmaster",
        abstract: "Run the chunkmaster: cluster map, heartbeats, file id leases, group health.",
        discussion: """
            Its state lives in DIR/master.sqlite, or with --database in PostgreSQL, where several \
            masters share it: one leads (a lease in the database) and the others stand by, answering \
            503 NOT_LEADER with the leader's address, and take over within a few seconds when it \
            dies. Clients find the masters through --master URL,URL or SPEEDY_MASTER and follow the \
            leader. The members of a group must be in different failure zones (each chunkserver's \
            --zone, else its host): a chunkserver joining a group where another member is in its \
            zone is refused (409 ZONE_CONFLICT, in the event log) unless --allow-same-zone.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "127.0.0.1", port: 8099)

    @Option(help: "Directory for the master's SQLite database (unused with --database).")
    var data = "./speedy-data/master"

    @Option(
        help: .init(
            "A PostgreSQL database to keep the cluster state in instead, shared by every master given it: postgresql://USER@HOST:PORT/DB[?sslmode=require&pool=20]. The password comes from $PGPASSWORD (or the URL).",
            valueName: "url"))
    var database: String?

    @Option(help: "Seconds the leader lease lasts without renewal (with --database); a standby takes over about this long after the leader dies.")
    var leaseTtl: Double = 3

    @Option(help: "Seconds without a heartbeat before a chunkserver counts as down.")
    var downAfter: Double = 3

    @Option(help: "Address clients reach this master at, HOST:PORT, shown in `chunktool status` and the console, and given to clients by standbys (default: --listen).")
    var advertise: HostPort?

    @Flag(inversion: .prefixedNo, help: "Repair damaged chunks by copying a good copy from another member of the group (the leader does).")
    var autoRepair = true

    @Option(help: "With auto-repair, compare each group's members this often (range digests: a few requests when they agree) and copy back the chunks one misses (0: never).")
    var compareEvery = DurationArgument(.seconds(3600))

    @Option(help: ArgumentHelp("Leave chunks younger than this out of the comparison (tests).", visibility: .hidden))
    var compareMinAge = DurationArgument(.seconds(60))

    @Option(help: "Bytes per second repairs and spare fills copy at most, so clients keep the bandwidth (default: no limit).")
    var recoveryRate: SizeArgument?

    @Option(help: "Replace a chunkserver DOWN this long with a spare (speedy chunkserver --spare), filled from the rest of its group (0: never).")
    var replaceAfter = DurationArgument(.seconds(600))

    @Flag(help: "Let members of one group share a failure zone (chunkserver --zone, else its host): a cluster on one machine, a test.")
    var allowSameZone = false

    @OptionGroup var security: RoleSecurityOptions

    func validate() throws {
        guard downAfter > 0, downAfter < 86_400 else { throw ValidationError("--down-after must be between 0 and 86400 seconds") }
        guard leaseTtl >= 1, leaseTtl <= 600 else { throw ValidationError("--lease-ttl must be between 1 and 600 seconds") }
        if let advertise, advertise.port == 0 || ["0.0.0.0", "::"].contains(advertise.host) {
            throw ValidationError("--advertise must be an address others can reach, with a port")
        }
        if let database {
            do {
                _ = try PostgresURL(database)
            } catch {
                throw ValidationError("--database: \(error)")
            }
            // Standbys send clients to the address the leader put in the lease.
            if advertise == nil, listen.port == 0 || ["0.0.0.0", "::"].contains(listen.host) {
                throw ValidationError("with --database, a master listening on \(listen) needs --advertise HOST:PORT: standbys send clients there")
            }
        }
    }

    func run() async throws {
        let security = try security.resolve(role: "chunkmaster")
        var configuration = ChunkMasterConfiguration(
            listen: listen, dataDirectory: data, downAfter: .milliseconds(Int64(downAfter * 1000)), security: security,
            advertise: advertise, database: try database.map { try PostgresURL($0) }, leaseTTL: .milliseconds(Int64(leaseTtl * 1000)))
        configuration.autoRepair = autoRepair
        configuration.compareEvery = compareEvery.duration == .zero ? nil : compareEvery.duration
        configuration.compareMinAge = compareMinAge.duration
        configuration.allowSameZone = allowSameZone
        configuration.replaceAfter = replaceAfter.duration == .zero ? nil : replaceAfter.duration
        configuration.recoveryRate = recoveryRate.flatMap { $0.bytes == 0 ? nil : Int(min($0.bytes, UInt64(Int.max))) }
        let master = try await ChunkMaster(configuration: configuration, logger: makeLogger(label: "speedy.chunkmaster"))
        try await master.run()
    }
}

struct ChunkServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chunkserver",
        abstract: "Run a chunkserver: store one group's chunks in preallocated volume files.",
        discussion: """
            Chunks are appended to volume files of --volume-size under --data, each with a CRC-32C; \
            a write is acknowledged only once fsynced. Below --reserve free bytes the server turns \
            read-only. Its id is kept in DATA/server-id. The master keeps the members of a group in \
            different failure zones (--zone, else the host of --advertise): one on the same host as \
            another member of its group is refused, and says so in this log, unless the master has \
            --allow-same-zone.
            """
    )

    @Option(help: "Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).")
    var master: String?

    @Option(help: "The group this chunkserver belongs to (1 or more).")
    var group: UInt32?

    @Flag(help: "Join as a spare: no group until the master gives it one, to replace a member that stays down (see chunkmaster --replace-after).")
    var spare = false

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "127.0.0.1", port: 7657)

    @Option(help: "Address the master and clients reach this server at, HOST:PORT (default: --listen; needed when listening on 0.0.0.0).")
    var advertise: HostPort?

    @Option(help: .init("The failure zone this server is in (a host, rack or room): letters, digits, '.', '_', '-', at most 63 (default: the host of --advertise).", valueName: "name"))
    var zone: String?

    @Option(help: "Data directory (volume files, index checkpoint, server id).")
    var data: String

    @Option(help: "Server id to use (default: the one in DATA/server-id, made on first start).")
    var id: String?

    @Option(help: "Size of each preallocated volume file.")
    var volumeSize = SizeArgument(bytes: 1 << 30)

    @Option(help: "Largest chunk accepted.")
    var maxChunk = SizeArgument(bytes: 16 << 20)

    @Option(help: "Free space kept in reserve; below it the server is read-only.")
    var reserve = SizeArgument(bytes: 256 << 20)

    @Option(help: "Cap on usable space (default: the filesystem's size).")
    var capacity: SizeArgument?

    @Option(help: "Seconds between heartbeats.")
    var heartbeatInterval: Double = 1

    @Option(help: "Compact a sealed volume once its live chunks fill less than this fraction of it.")
    var compactThreshold = 0.5

    @Option(help: "Bytes per second a compaction copies at most, so pulls keep their speed (0: no limit).")
    var compactRate = SizeArgument(bytes: 32 << 20)

    @Option(help: "How often to look for volumes to compact (0: only when asked, by `chunktool gc --compact`).")
    var compactEvery = DurationArgument(.seconds(60))

    @Option(help: "Bytes per second the background scrub reads at most, a quarter of it while clients use the disk (0: no scrubbing).")
    var scrubRate = SizeArgument(bytes: 32 << 20)

    @Option(help: "Start a scrub pass (read every chunk, check its CRC) this long after the last one started; a pass that would take longer speeds up.")
    var scrubEvery = DurationArgument(.seconds(7 * 86_400))

    @OptionGroup var security: RoleSecurityOptions

    func validate() throws {
        guard (group == nil) == spare else { throw ValidationError("name the group (--group G) or start a spare (--spare), one of the two") }
        guard group != 0 else { throw ValidationError("--group must be 1 or more (group 0 is where spares wait)") }
        guard maxChunk.bytes > 0, maxChunk.bytes <= UInt64(UInt32.max) else { throw ValidationError("--max-chunk must be between 1 byte and 4 GiB") }
        guard volumeSize.bytes >= UInt64(RecordFormatLimits.minimumVolume(maxChunk: Int(maxChunk.bytes))) else {
            throw ValidationError("--volume-size must hold at least one chunk of --max-chunk (\(ByteSize.format(maxChunk.bytes)))")
        }
        guard heartbeatInterval > 0, heartbeatInterval < 3600 else {
            throw ValidationError("--heartbeat-interval must be between 0 and 3600 seconds")
        }
        if let advertise, advertise.port == 0 || ["0.0.0.0", "::"].contains(advertise.host) {
            throw ValidationError("--advertise must be an address others can reach, with a port")
        }
        guard compactThreshold.isFinite, (0...1).contains(compactThreshold) else {
            throw ValidationError("--compact-threshold must be a fraction between 0 and 1")
        }
        guard scrubEvery.duration >= .seconds(1) else { throw ValidationError("--scrub-every must be at least 1s") }
        if let zone, !FailureZone.isValidName(zone) {
            throw ValidationError("--zone must be 1 to \(FailureZone.maxLength) letters, digits, '.', '_' or '-'")
        }
        if advertise == nil, ["0.0.0.0", "::"].contains(listen.host) {
            throw ValidationError("listening on \(listen.host) needs --advertise HOST:PORT: the address the master, imageservers and the other members reach this server at")
        }
    }

    func run() async throws {
        let security = try security.resolve(role: "chunkserver", talksToMaster: true, masterFlag: master)
        // A bare host:port gets the cluster's scheme.
        let masterURL = MasterLocation.resolve(flag: master, scheme: security.peers.scheme)
        let store = VolumeStoreConfiguration(
            directory: data, volumeSize: Int(volumeSize.bytes), maxChunkBytes: Int(maxChunk.bytes),
            reserveBytes: reserve.bytes, capacityBytes: capacity?.bytes)
        var configuration = ChunkServerConfiguration(
            listen: listen, masterURL: masterURL, group: group ?? 0, serverId: id,
            heartbeatInterval: .milliseconds(Int64(heartbeatInterval * 1000)), store: store, security: security,
            advertise: advertise)
        configuration.compactThreshold = compactThreshold
        configuration.compactRate = Int(min(compactRate.bytes, UInt64(Int.max)))
        configuration.compactInterval = compactEvery.duration == .zero ? nil : compactEvery.duration
        configuration.spare = spare
        configuration.zone = zone
        configuration.scrubRate = Int(min(scrubRate.bytes, UInt64(Int.max)))
        configuration.scrubEvery = scrubEvery.duration
        try await ChunkServer.run(configuration)
    }
}

/// Size rules that follow from the record format.
enum RecordFormatLimits {
    /// A volume must hold at least one record of the largest chunk.
    static func minimumVolume(maxChunk: Int) -> Int { RecordHeader.recordSize(payloadLength: maxChunk) }
}

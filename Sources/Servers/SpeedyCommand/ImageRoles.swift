import Foundation
import ArgumentParser
import GarbageCollection
import ImageServer
import MetaServer
import ServerSupport
import SpeedyPostgres
import SpeedyClients
import SpeedyCore
import CommandLineSupport

struct MetaServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metaserver",
        abstract: "Run the metaserver: blobs, manifests, tags and upload sessions (SQLite, or PostgreSQL).",
        discussion: """
            Its state lives in DIR/meta.sqlite, or with --database in PostgreSQL, where several \
            metaservers can share it (docs/deployment.md). Imageservers reach them through --meta URL,URL.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "127.0.0.1", port: 8100)

    @Option(help: "Directory for the metaserver's SQLite database (unused with --database).")
    var data = "./speedy-data/meta"

    @Option(
        help: ArgumentHelp(
            "A PostgreSQL database to keep the metadata in instead, shared by every metaserver given it: postgresql://USER@HOST:PORT/DB[?sslmode=require&pool=20]. The password comes from $PGPASSWORD (or the URL).",
            valueName: "url"))
    var database: String?

    @Option(help: "Collect garbage this often in the background, e.g. 6h (0: never; `chunktool gc` runs it by hand).")
    var gcEvery = DurationArgument(.zero)

    @Option(help: "Keep manifests and blobs referenced more recently than this.")
    var gcGrace = DurationArgument(.seconds(3600))

    @Option(help: "Delete unreferenced chunks only once held this long; more than the imageservers' --hold-deadline (default: --gc-grace, at least 10m).")
    var gcChunkGrace: DurationArgument?

    @Flag(help: "After each background collection, have the chunkservers compact their volumes.")
    var gcCompact = false

    @Option(help: "Base URL of the chunkmaster: the metaserver heartbeats to it, and background collection reads its map (default: $SPEEDY_MASTER; without either, no heartbeats).")
    var master: String?

    @Option(help: ArgumentHelp("The id this metaserver reports to the master (default: metaserver@HOST:PORT).", valueName: "id"))
    var id: String?

    @Option(
        help: ArgumentHelp(
            "Retention rules: lines `PATTERN keep-newest=N keep-recent=30d keep-tags=GLOB,…` (docs/gc.md); background collection applies them before it sweeps, `chunktool retention` by hand. SIGHUP re-reads it.",
            valueName: "path"))
    var retention: String?

    @Option(
        help: ArgumentHelp(
            "Sync jobs: `sync NAME every=1h`, `from URL`, `to URL`, `rule SRC[:TAGS] -> DEST` lines (docs/registry.md, \"Replication\"), run one at a time on their schedule, each reported to the master as a job. Give it to one metaserver of those sharing a database. SIGHUP re-reads it.",
            valueName: "path"))
    var sync: String?

    @OptionGroup var security: RoleSecurityOptions

    /// Whether a master was named, by the flag or the environment.
    private var masterNamed: Bool {
        master != nil || !(ProcessInfo.processInfo.environment["SPEEDY_MASTER"] ?? "").isEmpty
    }

    func validate() throws {
        if let database {
            do {
                _ = try PostgresURL(database)
            } catch {
                throw ValidationError("--database: \(error)")
            }
        }
        if let retention {
            do {
                _ = try RetentionRules(retentionFile: retention)
            } catch {
                throw ValidationError("--retention: \(error)")
            }
        }
        if let sync {
            do {
                _ = try SyncJobs(syncFile: sync)
            } catch {
                throw ValidationError("--sync: \(error)")
            }
        }
    }

    func run() async throws {
        // Scheduled work reports to the master: its events and jobs.
        let talksToMaster = gcEvery.duration > .zero || sync != nil || masterNamed
        let security = try security.resolve(role: "metaserver", talksToMaster: talksToMaster, masterFlag: master)
        var configuration = MetaServerConfiguration(listen: listen, dataDirectory: data, security: security)
        configuration.id = id
        configuration.retentionFile = retention
        configuration.syncFile = sync
        configuration.database = try database.map { try PostgresURL($0) }
        let scheme = security.peers.scheme
        if masterNamed { configuration.masterURL = MasterLocation.resolve(flag: master, scheme: scheme) }
        if sync != nil { configuration.syncMasterURL = MasterLocation.resolve(flag: master, scheme: scheme) }
        if gcEvery.duration > .zero {
            configuration.collection = .init(
                interval: gcEvery.duration, masterURL: MasterLocation.resolve(flag: master, scheme: scheme),
                options: GarbageCollectionOptions(grace: gcGrace.duration, chunkGrace: gcChunkGrace?.duration, compact: gcCompact))
        }
        try await MetaServer.run(configuration)
    }
}

struct ImageServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "imageserver",
        abstract: "Run an imageserver: the OCI Distribution API that docker, podman and skopeo push to and pull from.",
        discussion: """
            Stateless: blobs are cut into --chunk-size chunks written to every member of a chunkserver \
            group; metadata goes to the metaserver. Run as many as you like side by side. \
            Without --htpasswd or --access anyone may push and pull; with them, clients log in \
            (docker/podman/skopeo login) through the token endpoint this imageserver serves at \
            /token, and the access file says who may pull, push and delete where. It needs the \
            cluster secret (--cluster-secret-file) to reach the internal APIs.
            """
    )

    @Option(help: "Address to listen on, HOST:PORT.")
    var listen = HostPort(host: "127.0.0.1", port: 6788)

    @Option(help: "Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).")
    var master: String?

    @Option(help: "Base URL of the metaserver, or of several that share one database: URL,URL (calls move on to the next when one does not answer).")
    var meta = "http://127.0.0.1:8100"

    @Option(help: "Size of the chunks blobs are cut into.")
    var chunkSize = SizeArgument(bytes: 4 << 20)

    @Option(help: "Chunk bytes held in memory at once across all requests.")
    var memoryBudget = SizeArgument(bytes: 96 << 20)

    @Option(help: ArgumentHelp("Budget bytes one client (address, or user once logged in) may hold at once (default: half the budget).", valueName: "size"))
    var memoryPerClient: SizeArgument?

    @Option(help: ArgumentHelp("Seconds a request waits for budget before it is answered 503 with Retry-After.", valueName: "seconds"))
    var memoryWait = 10.0

    @Option(help: ArgumentHelp("Seconds a client may send or take nothing mid-request before its connection is closed and its buffers freed.", valueName: "seconds"))
    var clientIdleTimeout = 30.0

    @Option(help: ArgumentHelp("htpasswd file of the registry's users (bcrypt: `htpasswd -B`); turns logins on. SIGHUP re-reads it.", valueName: "path"))
    var htpasswd: String?

    @Option(help: ArgumentHelp("Access file: lines `WHO PATTERN ACTIONS` (see docs/security.md); turns logins on. SIGHUP re-reads it.", valueName: "path"))
    var access: String?

    @Option(help: ArgumentHelp("File with the key registry tokens are signed with; give every imageserver of a cluster the same one. While rotating it holds two, one per line: the first signs, both are accepted. SIGHUP re-reads it.", valueName: "path"))
    var tokenKeyFile: String?

    @Option(help: ArgumentHelp("URL of the token endpoint sent in challenges (default: /token on the host the client used).", valueName: "url"))
    var tokenRealm: String?

    @Option(help: ArgumentHelp("Seconds an issued token is good for.", valueName: "seconds"))
    var tokenLifetime = 300

    @Option(help: ArgumentHelp("Requests a second one client address may make, bursts of twice that (0: no limit).", valueName: "n"))
    var rateLimit = 200.0

    @Option(help: ArgumentHelp("Hours an upload session may go without a request before it is ended and its chunks deleted.", valueName: "hours"))
    var uploadExpiry = 24.0

    @Option(
        help: ArgumentHelp(
            "A pushed chunk not recorded in the metadata within this long fails its push; garbage collection's --chunk-grace must be longer (e.g. 60s).",
            valueName: "duration"))
    var holdDeadline = DurationArgument(.seconds(60))

    @Option(
        help: ArgumentHelp(
            "How long the chunk tickets in a chunk map (for `speedy peer`) let their holder read each chunk, e.g. 10m.", valueName: "duration"))
    var ticketLifetime = DurationArgument(.seconds(600))

    @Option(help: ArgumentHelp("The id this imageserver reports to the master (default: imageserver@HOST:PORT).", valueName: "id"))
    var id: String?

    @Option(help: ArgumentHelp("How often the tags pulled since the last time are sent to the metaserver, for retention's keep-recent, e.g. 30s.", valueName: "duration"))
    var pullRecordInterval = DurationArgument(.seconds(30))

    @Option(help: ArgumentHelp("Upload sessions open at once per repository.", valueName: "n"))
    var uploadsPerRepository = 1000

    @Option(help: ArgumentHelp("Upload sessions open at once per client (address, or user once logged in).", valueName: "n"))
    var uploadsPerClient = 100

    @Option(
        help: ArgumentHelp(
            "A load balancer or proxy in front of the registry (CIDR or address; repeat for several): for requests from it, limits and logs use the client address its --trusted-proxy-header names, and --max-connections-per-client does not apply to it. The header is ignored from anyone else.",
            valueName: "cidr"))
    var trustedProxy: [String] = []

    @Option(
        help: ArgumentHelp(
            "The header the trusted proxies set: x-forwarded-for or forwarded (RFC 7239). Only this one is read.", valueName: "header"))
    var trustedProxyHeader = "x-forwarded-for"

    @Option(
        help: ArgumentHelp(
            "Append a JSON line for every push, delete, failed login and refused request to this file (- for standard error); SIGHUP reopens it.",
            valueName: "path"))
    var auditLog: String?

    @OptionGroup(title: "Pull-through cache") var upstreams: UpstreamOptions

    @OptionGroup var security: RoleSecurityOptions

    /// The proxies of --trusted-proxy; nil when none is named.
    func trustedProxies() throws -> TrustedProxies? {
        guard !trustedProxy.isEmpty else { return nil }
        let networks = try trustedProxy.map { text in
            guard let network = IPNetwork(text) else {
                throw ValidationError("--trusted-proxy: '\(text.prefix(100))' is not an IP address or a CIDR network (192.0.2.0/24, 2001:db8::/32)")
            }
            return network
        }
        guard let header = TrustedProxies.Header(rawValue: trustedProxyHeader.lowercased()) else {
            throw ValidationError("--trusted-proxy-header must be x-forwarded-for or forwarded, got '\(trustedProxyHeader.prefix(100))'")
        }
        return TrustedProxies(networks: networks, header: header)
    }

    func validate() throws {
        guard chunkSize.bytes >= 64 << 10, chunkSize.bytes <= 16 << 20 else {
            throw ValidationError("--chunk-size must be between 64 KiB and 16 MiB (the chunkservers' default limit)")
        }
        guard memoryBudget.bytes >= 2 * chunkSize.bytes else { throw ValidationError("--memory-budget must hold at least two chunks") }
        if let share = memoryPerClient, share.bytes < chunkSize.bytes || share.bytes > memoryBudget.bytes {
            throw ValidationError("--memory-per-client must hold at least one chunk and at most the whole --memory-budget")
        }
        guard memoryWait >= 0.001, memoryWait <= 3600 else { throw ValidationError("--memory-wait must be between 0.001 and 3600 seconds") }
        guard (10...86400).contains(tokenLifetime) else { throw ValidationError("--token-lifetime must be between 10 and 86400 seconds") }
        guard uploadExpiry >= 0.0002, uploadExpiry <= 24 * 365 else { throw ValidationError("--upload-expiry must be between 0.0002 and 8760 hours") }
        guard uploadsPerRepository >= 1, uploadsPerClient >= 1 else {
            throw ValidationError("--uploads-per-repository and --uploads-per-client must be at least 1")
        }
        guard holdDeadline.duration >= .milliseconds(500) else { throw ValidationError("--hold-deadline must be at least 500ms") }
        guard ticketLifetime.duration >= .seconds(10), ticketLifetime.duration <= .seconds(86400) else {
            throw ValidationError("--ticket-lifetime must be between 10s and 24h")
        }
        guard rateLimit >= 0, rateLimit <= 1_000_000 else { throw ValidationError("--rate-limit must be between 0 and 1000000") }
        guard clientIdleTimeout >= 0.1, clientIdleTimeout <= 86400 else {
            throw ValidationError("--client-idle-timeout must be between 0.1 and 86400 seconds")
        }
        _ = try trustedProxies()
        _ = try upstreams.upstreams()
        guard pullRecordInterval.duration >= .milliseconds(100) else { throw ValidationError("--pull-record-interval must be at least 100ms") }
    }

    func run() async throws {
        let security = try security.resolve(role: "imageserver", talksToMaster: true, masterFlag: master)
        // A bare host:port gets the cluster's scheme.
        let scheme = security.peers.scheme
        let masterURL = MasterLocation.resolve(flag: master, scheme: scheme)
        var configuration = ImageServerConfiguration(
            listen: listen, masterURL: masterURL, metaURL: MasterLocation.normalize(meta, scheme: scheme),
            chunkSize: Int(chunkSize.bytes), memoryBudget: Int(memoryBudget.bytes))
        configuration.transport = security.transport
        configuration.trustedProxies = try trustedProxies()
        if let auditLog {
            do {
                configuration.auditLog = try AuditLog(path: auditLog)
            } catch {
                throw ValidationError(error.description)
            }
        }
        configuration.transport.connectionLimits.exempt = configuration.trustedProxies?.networks ?? []
        configuration.cluster = security.peers
        configuration.roles = security.roles
        configuration.id = id
        configuration.memoryPerClient = memoryPerClient.map { Int($0.bytes) }
        configuration.memoryWaitLimit = .milliseconds(Int64(memoryWait * 1000))
        configuration.clientIdleLimit = .milliseconds(Int64(clientIdleTimeout * 1000))
        configuration.requestsPerSecond = rateLimit
        configuration.uploadExpiry = .milliseconds(Int64(uploadExpiry * 3_600_000))
        // Holds come often enough that several fit in the deadline.
        configuration.holdDeadline = holdDeadline.duration
        configuration.ticketLifetime = ticketLifetime.duration
        configuration.holdInterval = min(.seconds(5), holdDeadline.duration / 4)
        configuration.uploadLimits = UploadLimits(perRepository: uploadsPerRepository, perClient: uploadsPerClient)
        configuration.auth = RegistryAuthConfiguration(htpasswdPath: htpasswd, accessPath: access, tokenKeyPath: tokenKeyFile)
        configuration.auth.realm = tokenRealm
        configuration.auth.tokenLifetime = .seconds(tokenLifetime)
        configuration.upstreams = try upstreams.upstreams()
        configuration.pullRecordInterval = pullRecordInterval.duration
        try await ImageServer.run(configuration)
    }
}

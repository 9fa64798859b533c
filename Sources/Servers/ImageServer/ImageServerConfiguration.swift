import HTTPTypes
import ServerSupport
import SpeedyClients
import SpeedyCore

/// Everything `speedy imageserver` needs to run.
public struct ImageServerConfiguration: Sendable {
    /// Where the OCI Distribution API listens.
    public var listen: HostPort
    /// Base URL of the chunkmaster.
    public var masterURL: String
    /// Base URL of the metaserver.
    public var metaURL: String
    /// Layers are cut into chunks of this size (the last chunk of a request may be shorter).
    public var chunkSize: Int
    /// Chunk bytes held in memory at once across all requests; requests wait (and TCP pushes back
    /// on clients) beyond it. Bounds resident memory whatever the concurrency.
    public var memoryBudget: Int
    /// Chunk writes one upload keeps in flight while it reads the next chunk.
    public var writesInFlightPerUpload: Int
    /// Largest manifest accepted.
    public var maxManifestBytes: Int
    /// How often the cluster map is refreshed from the master.
    public var refreshInterval: Duration
    /// File ids leased from the master at a time.
    public var leaseSize: UInt64
    /// Groups a chunk write is tried on before the upload fails.
    public var writeAttempts: Int
    /// TLS and connection limits of the registry port.
    public var transport = ServerTransport()
    /// The proxies whose forwarding header names the client; nil trusts none.
    public var trustedProxies: TrustedProxies?
    /// Where pushes, deletes and refusals are recorded; nil keeps no audit log.
    public var auditLog: AuditLog?
    /// A request whose client sends or takes nothing for this long is cut off and its buffers
    /// given back.
    public var clientIdleLimit: Duration = .seconds(30)
    /// Budget bytes one client (address or user) may hold at once; nil is half the budget.
    public var memoryPerClient: Int?
    /// How long a request waits for budget before it is answered 503.
    public var memoryWaitLimit: Duration = .seconds(10)
    /// How long a request waits for a metaserver when none answers (one restarting, say) before
    /// it is answered `503` with `Retry-After`.
    public var metaOutageWait: Duration = .seconds(10)
    /// Logins, permissions and tokens.
    public var auth = RegistryAuthConfiguration()
    /// Requests a second one client address may make (bursts of twice that); 0 turns it off.
    public var requestsPerSecond: Double = 200
    /// Upload sessions open at once per repository and per client (address or user); a push past
    /// a cap is answered 429 until sessions finish or expire.
    public var uploadLimits = UploadLimits(perRepository: 1000, perClient: 100)
    /// An upload session without a request for this long is ended and its chunks deleted.
    public var uploadExpiry: Duration = .seconds(24 * 3600)
    /// A request that is still streaming records the chunks it has written in its upload session
    /// this often, so garbage collection sees them as referenced (docs/gc.md).
    public var holdInterval: Duration = .seconds(5)
    /// A chunk not recorded within this long of its write is never referenced by this request: the
    /// request fails instead. Garbage collection's chunk grace period must be longer.
    public var holdDeadline: Duration = .seconds(60)

    /// How long the chunk tickets of a chunk map (`GET /v2/<name>/_speedy/chunks/<digest>`) let
    /// their bearer read the blob's chunks from the chunkservers.
    public var ticketLifetime: Duration = .seconds(600)

    /// How the imageserver calls the master, the metaservers and the chunkservers: the cluster
    /// secret (which its own `/metrics` asks for too; none under `--insecure`) and the CA it trusts.
    public var cluster = ClusterTransport.plain
    /// With a role table, the imageserver's port holds each caller to its role
    /// (``RouteAuthorization/imageserver``), and chunk tickets are signed with the key derived from
    /// its own secret (`v2`, which chunkservers check with the table's public key); nil: one
    /// cluster secret for every role.
    public var roles: RoleTableFile?
    /// The id this imageserver reports to the master (default `imageserver@HOST:PORT`).
    public var id: String?
    /// How often the tags pulled since the last time are sent to the metaserver (retention keeps
    /// tags pulled lately).
    public var pullRecordInterval: Duration = .seconds(30)
    /// The registries this imageserver caches (pull-through): none by default.
    public var upstreams: [Upstream] = []

    /// Creates a configuration with the defaults.
    public init(
        listen: HostPort, masterURL: String, metaURL: String, chunkSize: Int = 4 << 20, memoryBudget: Int = 96 << 20,
        writesInFlightPerUpload: Int = 2, maxManifestBytes: Int = 4 << 20, refreshInterval: Duration = .seconds(1),
        leaseSize: UInt64 = 1000, writeAttempts: Int = 3
    ) {
        self.listen = listen
        self.masterURL = masterURL
        self.metaURL = metaURL
        self.chunkSize = chunkSize
        self.memoryBudget = memoryBudget
        self.writesInFlightPerUpload = writesInFlightPerUpload
        self.maxManifestBytes = maxManifestBytes
        self.refreshInterval = refreshInterval
        self.leaseSize = leaseSize
        self.writeAttempts = writeAttempts
    }
}

import Foundation
import GarbageCollection
import Hummingbird
import Logging
import Metrics
import CoreMetrics
import ServiceLifecycle
import ServerSupport
import SpeedyCore
import Synchronization

/// Everything `speedy metaserver` needs to run.
public struct MetaServerConfiguration: Sendable {
    /// Where the HTTP API listens.
    public var listen: HostPort
    /// Directory for `meta.sqlite`.
    public var dataDirectory: String
    /// A PostgreSQL database to use instead of SQLite (several metaservers may share it).
    public var database: PostgresURL?
    /// The cluster secret and TLS.
    public var security: RoleSecurity
    /// Background garbage collection; nil when it is run only by hand (`chunktool gc`).
    public var collection: CollectionSchedule?
    /// The chunkmaster to heartbeat to; nil sends none.
    public var masterURL: String?
    /// The id reported to the master (default `metaserver@HOST:PORT`).
    public var id: String?

    /// When and how the metaserver collects garbage itself.
    public struct CollectionSchedule: Sendable {
        /// Time between the end of one collection and the start of the next.
        public var interval: Duration
        /// The chunkmaster, for the cluster map.
        public var masterURL: String
        /// Grace periods and whether to compact.
        public var options: GarbageCollectionOptions

        /// Creates a schedule.
        public init(interval: Duration, masterURL: String, options: GarbageCollectionOptions) {
            self.interval = interval
            self.masterURL = masterURL
            self.options = options
        }
    }

    /// Creates a configuration.
    public init(listen: HostPort, dataDirectory: String, security: RoleSecurity) {
        self.listen = listen
        self.dataDirectory = dataDirectory
        self.security = security
    }
}

/// What the metaserver's own metrics need of its store beyond ``SpeedyCore/MetadataStore``.
public protocol UploadSessionCounting: Sendable {
    /// Upload sessions open now.
    func uploadSessionCount() async throws(MetadataError) -> Int
}

/// The metaserver role: a ``SQLiteMetadataStore`` or ``PostgresMetadataStore`` served over HTTP
/// for imageservers (docs/api.md).
public enum MetaServer {
    /// Opens the database and serves until SIGINT or SIGTERM.
    public static func run(_ configuration: MetaServerConfiguration) async throws {
        let logger = makeLogger(label: "speedy.metaserver")
        // Before any metric is made: one made earlier would record nowhere.
        RoleMetrics.bootstrap()
        let store = try await openStore(configuration, logger: logger)
        var services: [any Service] = []
        let tally = RequestTally()
        // Open upload sessions, counted in the database every few seconds for the heartbeat.
        let sessions = SessionCount()
        let heartbeat = configuration.masterURL.map { url in
            RoleHeartbeat(
                role: .metaserver, id: configuration.id, master: MasterClient(baseURL: url, timeout: .seconds(2)), tally: tally,
                openUploads: { sessions.value.load(ordering: .relaxed) }, readiness: ReadinessCheck { await readiness(of: store) },
                logger: logger)
        }
        if let heartbeat {
            services.append(heartbeat)
            services.append(
                PeriodicTask(name: "upload session count", interval: .seconds(3)) {
                    if let open = try? await store.uploadSessionCount() { sessions.value.store(UInt64(max(0, open)), ordering: .relaxed) }
                })
        }
        if let schedule = configuration.collection {
            let collector = GarbageCollector(meta: store, master: MasterClient(baseURL: schedule.masterURL), logger: logger)
            services.append(
                PeriodicTask(name: "garbage collection", interval: schedule.interval) {
                    do {
                        _ = try await collector.run(schedule.options)
                    } catch {
                        logger.warning("garbage collection could not run: \(error)")
                    }
                })
        }
        try await HTTPServer.run(
            role: "metaserver",
            router: router(store: store, security: configuration.security, logger: logger, tally: tally) {
                if let open = try? await store.uploadSessionCount() { Gauge(label: "speedy_metaserver_upload_sessions").record(open) }
            },
            listen: configuration.listen, transport: configuration.security.transport, services: services, logger: logger
        ) { bound in heartbeat?.listening(at: bound) }
    }

    /// PostgreSQL when a database is named, else SQLite in the data directory.
    static func openStore(_ configuration: MetaServerConfiguration, logger: Logger) async throws -> any MetadataStore & UploadSessionCounting {
        if let database = configuration.database {
            let store = try await PostgresMetadataStore(url: database, logger: logger)
            logger.info("metadata in PostgreSQL at \(database.redacted)")
            return store
        }
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        return try SQLiteMetadataStore(path: configuration.dataDirectory + "/meta.sqlite")
    }

    /// Ready when the database answers a read.
    static func readiness(of store: some MetadataStore) async -> Readiness {
        do {
            _ = try await store.repositories(after: nil, limit: 1)
            return .ready
        } catch {
            return .notReady("the database does not answer: \(error)")
        }
    }

    /// The HTTP API over any store (tests serve a store in-process with it), behind the cluster secret.
    public static func router(
        store: some MetadataStore, security: RoleSecurity, logger: Logger = Logger(label: "speedy.metaserver"),
        tally: RequestTally = RequestTally(), collectMetrics: @escaping @Sendable () async -> Void = {}
    ) -> Router<SpeedyRequestContext> {
        let router = Router(context: SpeedyRequestContext.self)
        router.middlewares.add(RequestTelemetryMiddleware(logger: logger, tally: tally))
        security.guardRoutes(router, role: "metaserver", logger: logger)
        router.middlewares.add(MetadataErrorMiddleware())

        router.get("/v1/blobs/{digest}") { request, context in
            try JSONResponse.make(try await store.blob(try digest(context), in: request.uri.queryParameters["repo"].map(String.init)))
        }
        router.post("/v1/blobs") { request, _ in
            let record = try await request.decodeJSON(BlobRecord.self, limit: 64 << 20)
            return try JSONResponse.make(try await store.commitBlob(record, repository: try repository(request)))
        }
        router.post("/v1/blobs/{digest}/mount") { request, context in
            let from = request.uri.queryParameters["from"].map(String.init)
            return try JSONResponse.make(try await store.mountBlob(try digest(context), into: try repository(request), from: from))
        }
        router.delete("/v1/blobs/{digest}") { request, context in
            try await store.unlinkBlob(try digest(context), from: try repository(request))
            return try JSONResponse.make(Empty())
        }
        router.post("/v1/blobs/repair") { request, _ in
            let body = try await request.decodeJSON(MetaClient.RepairRequest.self, limit: 64 << 20)
            return try JSONResponse.make(try await store.repairBlob(body.record, replacing: body.stale, repository: try repository(request)))
        }
        router.get("/v1/blobs") { request, _ in
            let limit = try request.queryInteger("limit", as: Int.self) ?? 1000
            return try JSONResponse.make(try await store.blobs(after: request.uri.queryParameters["after"].map(String.init), limit: limit))
        }
        router.put("/v1/manifests") { request, _ in
            let record = try await request.decodeJSON(ManifestRecord.self, limit: 16 << 20)
            try await store.putManifest(record, tag: request.uri.queryParameters["tag"].map(String.init))
            return try JSONResponse.make(Empty())
        }
        router.get("/v1/manifests") { request, _ in
            let record = try await store.manifest(try parameter(request, "reference"), in: try repository(request))
            // Base64 to imageservers that ask for it; arrays, which every release reads, otherwise.
            let base64 = request.uri.queryParameters["content"] == "base64"
            return try JSONResponse.make(record, userInfo: [ManifestRecord.base64ContentKey: base64])
        }
        router.delete("/v1/manifests") { request, _ in
            guard let digest = Digest(parsing: try parameter(request, "reference")) else {
                throw MetadataError.invalid("reference must be a digest")
            }
            try await store.deleteManifest(digest, in: try repository(request))
            return try JSONResponse.make(Empty())
        }
        router.delete("/v1/tags") { request, _ in
            try await store.deleteTag(try parameter(request, "tag"), in: try repository(request))
            return try JSONResponse.make(Empty())
        }
        router.get("/v1/tags") { request, _ in
            let n = try request.queryInteger("n", as: Int.self) ?? 1000
            let last = request.uri.queryParameters["last"].map(String.init)
            return try JSONResponse.make(try await store.tags(in: try repository(request), after: last, limit: n))
        }
        router.get("/v1/repositories") { request, _ in
            let n = try request.queryInteger("n", as: Int.self) ?? 1000
            return try JSONResponse.make(try await store.repositories(after: request.uri.queryParameters["last"].map(String.init), limit: n))
        }
        router.get("/v1/repositories/exists") { request, _ in
            try JSONResponse.make(MetaClient.Exists(exists: try await store.repositoryExists(try repository(request))))
        }
        router.get("/v1/referrers/{digest}") { request, context in
            let type = request.uri.queryParameters["artifactType"].map(String.init)
            return try JSONResponse.make(try await store.referrers(of: try digest(context), in: try repository(request), artifactType: type))
        }
        router.post("/v1/uploads") { request, _ in
            let client = request.uri.queryParameters["client"].map(String.init) ?? ""
            return try JSONResponse.make(try await store.createUpload(repository: try repository(request), client: client, limits: try uploadLimits(request)))
        }
        router.post("/v1/uploads/expire") { request, _ in
            guard let before = try request.queryInteger("before", as: Int64.self) else {
                throw MetadataError.invalid("query parameter 'before' is required")
            }
            let limit = try request.queryInteger("limit", as: Int.self) ?? 1000
            return try JSONResponse.make(try await store.expireUploads(idleSinceMs: before, limit: limit))
        }
        router.get("/v1/uploads/{id}") { _, context in
            try JSONResponse.make(try await store.upload(context.parameters.get("id") ?? ""))
        }
        router.post("/v1/uploads/{id}/append") { request, context in
            let body = try await request.decodeJSON(MetaClient.AppendRequest.self, limit: 16 << 20)
            return try JSONResponse.make(
                try await store.appendUpload(
                    context.parameters.get("id") ?? "", expectedOffset: body.expectedOffset, chunks: body.chunks,
                    newOffset: body.newOffset, hashState: body.hashState))
        }
        router.post("/v1/uploads/{id}/hold") { request, context in
            let chunks = try await request.decodeJSON([ChunkRef].self, limit: 16 << 20)
            try await store.holdChunks(chunks, upload: context.parameters.get("id") ?? "")
            return try JSONResponse.make(Empty())
        }
        router.post("/v1/uploads/{id}/complete") { request, context in
            let blob = try await request.decodeJSON(BlobRecord.self, limit: 64 << 20)
            return try JSONResponse.make(
                try await store.completeUpload(context.parameters.get("id") ?? "", blob: blob, repository: try repository(request)))
        }
        router.post("/v1/gc/sweep") { request, _ in
            guard let grace = try request.queryInteger("graceMs", as: Int64.self) else {
                throw MetadataError.invalid("query parameter 'graceMs' is required")
            }
            let limit = try request.queryInteger("limit", as: Int.self) ?? 1000
            let dryRun = request.uri.queryParameters["dryRun"] == "true"
            return try JSONResponse.make(try await store.sweep(graceMs: grace, limit: limit, dryRun: dryRun))
        }
        router.get("/v1/gc/chunks") { request, _ in
            try JSONResponse.make(try await store.chunkDeletions(limit: try request.queryInteger("limit", as: Int.self) ?? 1000))
        }
        router.post("/v1/gc/chunks/forget") { request, _ in
            try await store.forgetChunkDeletions(try await request.decodeJSON([ChunkKey].self, limit: 16 << 20))
            return try JSONResponse.make(Empty())
        }
        router.delete("/v1/uploads/{id}") { _, context in
            try await store.deleteUpload(context.parameters.get("id") ?? "")
            return try JSONResponse.make(Empty())
        }
        router.get("/v1/chunk-groups") { _, _ in
            try JSONResponse.make(ReferencedGroups(groups: try await store.referencedGroups()))
        }
        router.get("/v1/chunk-groups/{group}") { request, context in
            guard let group = context.parameters.get("group").flatMap(UInt32.init) else {
                throw APIError.badRequest("the group must be a whole number")
            }
            let after = try request.queryInteger("after", as: UInt64.self) ?? 0
            let limit = min(max(try request.queryInteger("limit", as: Int.self) ?? 1000, 1), 10000)
            return try JSONResponse.make(try await store.chunkReferences(group: group, after: after, limit: limit))
        }
        router.get("/v1/health") { _, _ in "ok\n" }
        HealthRoutes.register(on: router) { await readiness(of: store) }
        RoleMetrics.register(on: router, collect: collectMetrics)
        return router
    }

    private static func parameter(_ request: Request, _ name: String) throws -> String {
        guard let value = request.uri.queryParameters[Substring(name)], !value.isEmpty else {
            throw MetadataError.invalid("query parameter '\(name)' is required")
        }
        return String(value)
    }

    private static func repository(_ request: Request) throws -> String {
        let name = try parameter(request, "repo")
        guard OCINames.isValidRepository(name) else { throw MetadataError.invalid("'\(name)' is not a valid repository name") }
        return name
    }

    /// `perRepository` and `perClient`; an absent one is unlimited.
    private static func uploadLimits(_ request: Request) throws -> UploadLimits {
        UploadLimits(
            perRepository: try request.queryInteger("perRepository", as: Int.self) ?? UploadLimits.unlimited.perRepository,
            perClient: try request.queryInteger("perClient", as: Int.self) ?? UploadLimits.unlimited.perClient)
    }

    private static func digest(_ context: SpeedyRequestContext) throws -> Digest {
        let text = context.parameters.get("digest") ?? ""
        guard let digest = Digest(parsing: text) else { throw MetadataError.invalid("'\(text)' is not a digest") }
        return digest
    }
}

/// Answers every ``SpeedyCore/MetadataError`` with its status and wire body.
struct MetadataErrorMiddleware: RouterMiddleware {
    typealias Context = SpeedyRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as MetadataError {
            let status: HTTPResponse.Status =
                switch error {
                case .blobUnknown, .manifestUnknown, .nameUnknown, .uploadUnknown: .notFound
                case .uploadOffsetMismatch: .conflict
                case .invalid: .badRequest
                case .unavailable: .serviceUnavailable
                case .tooManyUploads: .tooManyRequests
                }
            return try JSONResponse.make(error.errorBody, status: status)
        }
    }
}

/// The metaserver's open upload sessions as last counted, for its heartbeat.
final class SessionCount: Sendable {
    let value = Atomic<UInt64>(0)
}

import AsyncHTTPClient
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyCore
import Synchronization

/// ``MetadataStore`` over HTTP: how imageservers use the metaserver (API in docs/api.md).
///
/// It may name several metaservers that share one database: a call goes to the one that
/// answered last, and moves on to the next when that one cannot be reached or answers 503.
/// Upload sessions live in the database, so an upload begun through one continues through
/// another. A call that timed out may have been applied; every call is safe to repeat (commits
/// and manifests are idempotent, appends carry the offset they expect).
public struct MetaClient: MetadataStore {
    /// One client per metaserver, in the order given.
    public let services: [ServiceClient]
    private let preferred: PreferredMetaserver

    /// How long a call waits for a metaserver when none answers (all are down, restarting, or
    /// cut off from their database) before it fails with ``MetadataError/unavailable(_:)``.
    public let outageWait: Duration

    /// Creates a client for the metaserver at `baseURL`, or for several: `URL,URL,…`. Given an
    /// `outageWait`, a call that finds no metaserver answering asks again every quarter second
    /// for that long: a metaserver that restarts within it costs its callers a pause, not an error.
    public init(
        baseURL: String, timeout: TimeAmount = .seconds(10), outageWait: Duration = .zero, transport: ClusterTransport,
        http: HTTPClient? = nil
    ) {
        let urls = MasterLocation.split(baseURL, scheme: transport.scheme)
        self.services = (urls.isEmpty ? [baseURL] : urls).map { ServiceClient(baseURL: $0, timeout: timeout, transport: transport, http: http, audience: .metaserver) }
        self.preferred = PreferredMetaserver()
        self.outageWait = outageWait
    }

    /// How the metaservers are called (the secret, the CA).
    public var transport: ClusterTransport { services[0].transport }

    /// Whether a metaserver says it is ready (`/readyz`: its database answers).
    public func isReady() async -> Bool {
        for service in services {
            if let reply = try? await service.send(.GET, "/readyz"), reply.status == 200 { return true }
        }
        return false
    }

    /// Calls the metaserver; absent things come back as JSON `null`, hence the optional. When no
    /// metaserver answers, asks them all again until ``outageWait`` has passed.
    private func call<R: Decodable>(
        _ method: HTTPMethod, _ path: String, query: [(String, String?)] = [], as type: R.Type,
        body: (some Encodable)? = Optional<Int>.none
    ) async throws(MetadataError) -> R {
        let deadline = ContinuousClock.now + outageWait
        while true {
            switch await round(method, path + QueryString.make(query), as: type, body: body) {
            case .answered(let result): return try result.get()
            case .noneAnswered(let failures):
                guard ContinuousClock.now + Self.outagePoll < deadline, !Task.isCancelled else {
                    throw .unavailable(failures.joined(separator: "; "))
                }
                try? await Task.sleep(for: Self.outagePoll)
            }
        }
    }

    /// How often a call waiting out an outage asks again.
    static let outagePoll: Duration = .milliseconds(250)

    /// What one pass over the metaservers came to.
    private enum Round<R> {
        /// One answered, with a result or an error of its own (a 4xx, a missing record).
        case answered(Result<R, MetadataError>)
        /// Every metaserver was unreachable or answered 503 (no database).
        case noneAnswered([String])
    }

    /// Asks each metaserver in turn, the one that answered last first.
    private func round<R: Decodable>(_ method: HTTPMethod, _ target: String, as type: R.Type, body: (some Encodable)?) async -> Round<R> {
        let first = preferred.index
        var failures: [String] = []
        for step in 0..<services.count {
            let index = (first + step) % services.count
            do {
                let result = try await services[index].json(method, target, as: R.self, body: body)
                if index != first { preferred.index = index }
                return .answered(.success(result))
            } catch {
                // Another metaserver may answer: this one is gone, or cannot reach the database.
                if case .unreachable = error {
                    failures.append("\(error)")
                    continue
                }
                if error.httpStatus == 503 {
                    failures.append("\(error)")
                    continue
                }
                if case .status(_, _, let body?) = error, let mapped = MetadataError(body: body) { return .answered(.failure(mapped)) }
                return .answered(.failure(.unavailable("\(error)")))
            }
        }
        return .noneAnswered(failures)
    }

    public func blob(_ digest: Digest, in repository: String?) async throws(MetadataError) -> BlobRecord? {
        try await call(.GET, "/v1/blobs/\(digest)", query: [("repo", repository)], as: BlobRecord?.self)
    }

    public func commitBlob(_ record: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try await call(.POST, "/v1/blobs", query: [("repo", repository)], as: BlobRecord.self, body: record)
    }

    public func repairBlob(_ record: BlobRecord, replacing stale: [ChunkRef], repository: String) async throws(MetadataError) -> BlobRecord {
        try await call(
            .POST, "/v1/blobs/repair", query: [("repo", repository)], as: BlobRecord.self, body: BlobRepairRequest(record: record, stale: stale))
    }

    public func blobs(after: String?, limit: Int) async throws(MetadataError) -> BlobPage {
        try await call(.GET, "/v1/blobs", query: [("after", after), ("limit", String(limit))], as: BlobPage.self)
    }

    public func mountBlob(_ digest: Digest, into repository: String, from: String?) async throws(MetadataError) -> BlobRecord {
        try await call(.POST, "/v1/blobs/\(digest)/mount", query: [("repo", repository), ("from", from)], as: BlobRecord.self)
    }

    public func unlinkBlob(_ digest: Digest, from repository: String) async throws(MetadataError) {
        _ = try await call(.DELETE, "/v1/blobs/\(digest)", query: [("repo", repository)], as: Empty.self)
    }

    public func putManifest(_ record: ManifestRecord, tag: String?) async throws(MetadataError) {
        _ = try await call(.PUT, "/v1/manifests", query: [("tag", tag)], as: Empty.self, body: record)
    }

    public func manifest(_ reference: String, in repository: String) async throws(MetadataError) -> ManifestRecord? {
        try await call(.GET, "/v1/manifests", query: [("repo", repository), ("reference", reference), ("content", "base64")], as: ManifestRecord?.self)
    }

    public func deleteManifest(_ digest: Digest, in repository: String) async throws(MetadataError) {
        _ = try await call(.DELETE, "/v1/manifests", query: [("repo", repository), ("reference", digest.description)], as: Empty.self)
    }

    public func deleteTag(_ tag: String, in repository: String) async throws(MetadataError) {
        _ = try await call(.DELETE, "/v1/tags", query: [("repo", repository), ("tag", tag)], as: Empty.self)
    }

    public func tags(in repository: String, after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        try await call(.GET, "/v1/tags", query: [("repo", repository), ("last", last), ("n", String(limit))], as: NamePage.self)
    }

    public func tagDetails(in repository: String, after: String?, limit: Int) async throws(MetadataError) -> TagDetailPage {
        try await call(.GET, "/v1/tags/details", query: [("repo", repository), ("last", after), ("n", String(limit))], as: TagDetailPage.self)
    }

    public func recordPulls(_ pulls: [TagPull]) async throws(MetadataError) {
        _ = try await call(.POST, "/v1/tags/pulls", as: Empty.self, body: pulls)
    }

    public func deleteTag(_ detail: TagDetail, in repository: String) async throws(MetadataError) -> Bool {
        try await call(.POST, "/v1/tags/delete-if-unchanged", query: [("repo", repository)], as: TagDeleted.self, body: detail).deleted
    }

    /// Has the metaserver apply its retention rules now (`POST /v1/retention`), or, with `dryRun`,
    /// say what they would remove. Not part of ``MetadataStore``: the rules are the metaserver's.
    /// Make the client with a timeout long enough to read every repository's tags.
    public func applyRetention(dryRun: Bool) async throws(MetadataError) -> RetentionReport {
        try await call(.POST, "/v1/retention", query: [("dryRun", dryRun ? "true" : nil)], as: RetentionReport.self)
    }

    public func repositories(after last: String?, limit: Int) async throws(MetadataError) -> NamePage {
        try await call(.GET, "/v1/repositories", query: [("last", last), ("n", String(limit))], as: NamePage.self)
    }

    public func repositoryExists(_ repository: String) async throws(MetadataError) -> Bool {
        try await call(.GET, "/v1/repositories/exists", query: [("repo", repository)], as: RepositoryExists.self).exists
    }

    public func referrers(of digest: Digest, in repository: String, artifactType: String?) async throws(MetadataError) -> [Descriptor] {
        try await call(
            .GET, "/v1/referrers/\(digest)", query: [("repo", repository), ("artifactType", artifactType)], as: [Descriptor].self)
    }

    public func createUpload(repository: String, client: String, limits: UploadLimits) async throws(MetadataError) -> UploadSession {
        // An absent cap is unlimited on the server: leave unlimited ones out.
        func cap(_ value: Int) -> String? { value == .max ? nil : String(value) }
        return try await call(
            .POST, "/v1/uploads",
            query: [("repo", repository), ("client", client), ("perRepository", cap(limits.perRepository)), ("perClient", cap(limits.perClient))],
            as: UploadSession.self)
    }

    public func upload(_ id: String) async throws(MetadataError) -> UploadSession? {
        try await call(.GET, "/v1/uploads/\(QueryString.escape(id))", as: UploadSession?.self)
    }

    public func appendUpload(_ id: String, expectedOffset: UInt64, chunks: [ChunkRef], newOffset: UInt64, hashState: [UInt8])
        async throws(MetadataError) -> UploadSession
    {
        let request = UploadAppendRequest(expectedOffset: expectedOffset, chunks: chunks, newOffset: newOffset, hashState: hashState)
        return try await call(.POST, "/v1/uploads/\(QueryString.escape(id))/append", as: UploadSession.self, body: request)
    }

    public func referencedGroups() async throws(MetadataError) -> [UInt32] {
        try await call(.GET, "/v1/chunk-groups", as: ReferencedGroups.self).groups
    }

    public func chunkReferences(group: UInt32, after: UInt64, limit: Int) async throws(MetadataError) -> ChunkReferencePage {
        try await call(.GET, "/v1/chunk-groups/\(group)", query: [("after", String(after)), ("limit", String(limit))], as: ChunkReferencePage.self)
    }

    public func chunkUsers(group: UInt32, fileId: UInt64) async throws(MetadataError) -> ChunkUsers {
        try await call(.GET, "/v1/chunks/\(group)/\(fileId)/users", as: ChunkUsers.self)
    }

    public func holdChunks(_ chunks: [ChunkRef], upload id: String) async throws(MetadataError) {
        _ = try await call(.POST, "/v1/uploads/\(QueryString.escape(id))/hold", as: Empty.self, body: chunks)
    }

    public func completeUpload(_ id: String, blob: BlobRecord, repository: String) async throws(MetadataError) -> BlobRecord {
        try await call(.POST, "/v1/uploads/\(QueryString.escape(id))/complete", query: [("repo", repository)], as: BlobRecord.self, body: blob)
    }

    public func sweep(graceMs: Int64, limit: Int, dryRun: Bool) async throws(MetadataError) -> MetadataSweep {
        try await call(
            .POST, "/v1/gc/sweep", query: [("graceMs", String(graceMs)), ("limit", String(limit)), ("dryRun", dryRun ? "true" : nil)],
            as: MetadataSweep.self)
    }

    public func chunkDeletions(limit: Int) async throws(MetadataError) -> [ChunkRef] {
        try await call(.GET, "/v1/gc/chunks", query: [("limit", String(limit))], as: [ChunkRef].self)
    }

    public func forgetChunkDeletions(_ chunks: [ChunkKey]) async throws(MetadataError) {
        _ = try await call(.POST, "/v1/gc/chunks/forget", as: Empty.self, body: chunks)
    }

    /// Safe to repeat: a move already made answers true again and changes nothing.
    public func moveChunk(of digest: Digest, from: ChunkRef, to: ChunkRef) async throws(MetadataError) -> Bool {
        try await call(.POST, "/v1/blobs/\(digest)/chunks/move", as: ChunkMoveResult.self, body: ChunkMoveRequest(from: from, to: to)).moved
    }

    public func groupUsage() async throws(MetadataError) -> [GroupUsage] {
        try await call(.GET, "/v1/group-usage", as: GroupUsageList.self).groups
    }

    public func deleteUpload(_ id: String) async throws(MetadataError) {
        _ = try await call(.DELETE, "/v1/uploads/\(QueryString.escape(id))", as: Empty.self)
    }

    public func expireUploads(idleSinceMs cutoff: Int64, limit: Int) async throws(MetadataError) -> [UploadSession] {
        try await call(.POST, "/v1/uploads/expire", query: [("before", String(cutoff)), ("limit", String(limit))], as: [UploadSession].self)
    }
}

/// Which of several metaservers answered last, shared by the copies of a ``MetaClient``.
final class PreferredMetaserver: Sendable {
    private let value = Atomic<Int>(0)

    var index: Int {
        get { value.load(ordering: .relaxed) }
        set { value.store(newValue, ordering: .relaxed) }
    }
}

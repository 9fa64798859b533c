import Hummingbird
import ServerSupport
import SpeedyCore

/// The metaserver's manifests, tags, repositories and referrers.
struct ManifestRecordRoutes<Store: MetadataStore>: Sendable {
    let store: Store
    /// The most tag pulls one call records (an imageserver sends what it saw since its last call).
    static var maximumPullsPerCall: Int { 10_000 }

    func register(on router: Router<SpeedyRequestContext>) {
        let store = self.store
        router.put("/v1/manifests") { request, _ in
            let record = try await request.decodeJSON(ManifestRecord.self, limit: 16 << 20)
            try await store.putManifest(record, tag: request.uri.queryParameters["tag"].map(String.init))
            return try JSONResponse.make(Empty())
        }
        router.get("/v1/manifests") { request, _ in
            let record = try await store.manifest(try request.requiredQuery("reference"), in: try request.repository())
            // Base64 to imageservers that ask for it; arrays, which every release reads, otherwise.
            let base64 = request.uri.queryParameters["content"] == "base64"
            return try JSONResponse.make(record, userInfo: [ManifestRecord.base64ContentKey: base64])
        }
        router.delete("/v1/manifests") { request, _ in
            guard let digest = Digest(parsing: try request.requiredQuery("reference")) else {
                throw MetadataError.invalid("reference must be a digest")
            }
            try await store.deleteManifest(digest, in: try request.repository())
            return try JSONResponse.make(Empty())
        }
        router.delete("/v1/tags") { request, _ in
            try await store.deleteTag(try request.requiredQuery("tag"), in: try request.repository())
            return try JSONResponse.make(Empty())
        }
        router.get("/v1/tags") { request, _ in
            let n = try request.queryInteger("n", as: Int.self) ?? 1000
            let last = request.uri.queryParameters["last"].map(String.init)
            return try JSONResponse.make(try await store.tags(in: try request.repository(), after: last, limit: n))
        }
        router.get("/v1/tags/details") { request, _ in
            let n = try request.queryInteger("n", as: Int.self) ?? 1000
            let last = request.uri.queryParameters["last"].map(String.init)
            return try JSONResponse.make(try await store.tagDetails(in: try request.repository(), after: last, limit: n))
        }
        router.post("/v1/tags/pulls") { request, _ in
            let pulls = try await request.decodeJSON([TagPull].self, limit: 16 << 20)
            guard pulls.count <= Self.maximumPullsPerCall else {
                throw MetadataError.invalid("at most \(Self.maximumPullsPerCall) pulls a call, not \(pulls.count)")
            }
            try await store.recordPulls(pulls)
            return try JSONResponse.make(Empty())
        }
        router.post("/v1/tags/delete-if-unchanged") { request, _ in
            let detail = try await request.decodeJSON(TagDetail.self, limit: 64 << 10)
            return try JSONResponse.make(TagDeleted(deleted: try await store.deleteTag(detail, in: try request.repository())))
        }
        router.get("/v1/repositories") { request, _ in
            let n = try request.queryInteger("n", as: Int.self) ?? 1000
            return try JSONResponse.make(try await store.repositories(after: request.uri.queryParameters["last"].map(String.init), limit: n))
        }
        router.get("/v1/repositories/exists") { request, _ in
            try JSONResponse.make(RepositoryExists(exists: try await store.repositoryExists(try request.repository())))
        }
        router.get("/v1/referrers/{digest}") { request, context in
            let type = request.uri.queryParameters["artifactType"].map(String.init)
            return try JSONResponse.make(try await store.referrers(of: try context.digest(), in: try request.repository(), artifactType: type))
        }
    }
}

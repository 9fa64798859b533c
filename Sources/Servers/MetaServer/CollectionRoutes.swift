import Hummingbird
import ServerSupport
import SpeedyCore

/// What garbage collection asks of the metaserver: the sweep, the chunks it freed, and the
/// chunks each group's blobs and uploads refer to.
struct CollectionRoutes<Store: MetadataStore>: Sendable {
    let store: Store

    func register(on router: Router<SpeedyRequestContext>) {
        let store = self.store
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
    }
}

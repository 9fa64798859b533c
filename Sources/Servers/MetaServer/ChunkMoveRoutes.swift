import Hummingbird
import ServerSupport
import SpeedyCore

/// What a drain or rebalance asks of the metaserver (docs/recovery.md, "Draining and
/// rebalancing"): switch one chunk of a blob to its copy, and how much each group holds.
struct ChunkMoveRoutes<Store: MetadataStore>: Sendable {
    let store: Store

    func register(on router: Router<SpeedyRequestContext>) {
        let store = self.store
        router.post("/v1/blobs/{digest}/chunks/move") { request, context in
            let body = try await request.decodeJSON(ChunkMoveRequest.self)
            return try JSONResponse.make(ChunkMoveResult(moved: try await store.moveChunk(of: try context.digest(), from: body.from, to: body.to)))
        }
        router.get("/v1/group-usage") { _, _ in
            try JSONResponse.make(GroupUsageList(groups: try await store.groupUsage()))
        }
    }
}

import Hummingbird
import ServerSupport
import SpeedyCore

/// The metaserver's blob records: look up, commit, mount, unlink, repair and page through them.
struct BlobRecordRoutes<Store: MetadataStore>: Sendable {
    let store: Store

    func register(on router: Router<SpeedyRequestContext>) {
        let store = self.store
        router.get("/v1/blobs/{digest}") { request, context in
            try JSONResponse.make(try await store.blob(try context.digest(), in: request.uri.queryParameters["repo"].map(String.init)))
        }
        router.post("/v1/blobs") { request, _ in
            let record = try await request.decodeJSON(BlobRecord.self, limit: 64 << 20)
            return try JSONResponse.make(try await store.commitBlob(record, repository: try request.repository()))
        }
        router.post("/v1/blobs/{digest}/mount") { request, context in
            let from = request.uri.queryParameters["from"].map(String.init)
            return try JSONResponse.make(try await store.mountBlob(try context.digest(), into: try request.repository(), from: from))
        }
        router.delete("/v1/blobs/{digest}") { request, context in
            try await store.unlinkBlob(try context.digest(), from: try request.repository())
            return try JSONResponse.make(Empty())
        }
        router.post("/v1/blobs/repair") { request, _ in
            let body = try await request.decodeJSON(BlobRepairRequest.self, limit: 64 << 20)
            return try JSONResponse.make(try await store.repairBlob(body.record, replacing: body.stale, repository: try request.repository()))
        }
        router.get("/v1/blobs") { request, _ in
            let limit = try request.queryInteger("limit", as: Int.self) ?? 1000
            return try JSONResponse.make(try await store.blobs(after: request.uri.queryParameters["after"].map(String.init), limit: limit))
        }
    }
}

import Hummingbird
import ServerSupport
import SpeedyCore

/// The metaserver's upload sessions: create, append, hold chunks, complete, delete and
/// expire.
struct UploadSessionRoutes<Store: MetadataStore>: Sendable {
    let store: Store

    func register(on router: Router<SpeedyRequestContext>) {
        let store = self.store
        router.post("/v1/uploads") { request, _ in
            let client = request.uri.queryParameters["client"].map(String.init) ?? ""
            return try JSONResponse.make(try await store.createUpload(repository: try request.repository(), client: client, limits: try request.uploadLimits()))
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
            let body = try await request.decodeJSON(UploadAppendRequest.self, limit: 16 << 20)
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
                try await store.completeUpload(context.parameters.get("id") ?? "", blob: blob, repository: try request.repository()))
        }
        router.delete("/v1/uploads/{id}") { _, context in
            try await store.deleteUpload(context.parameters.get("id") ?? "")
            return try JSONResponse.make(Empty())
        }
    }
}

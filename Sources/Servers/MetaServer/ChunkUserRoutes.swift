import Hummingbird
import ServerSupport
import SpeedyCore

/// Who uses a chunk (`GET /v1/chunks/{group}/{fileId}/users`): the blobs that list it with their
/// repositories, and whether an upload holds it; what a lost chunk is reported with.
struct ChunkUserRoutes<Store: MetadataStore>: Sendable {
    let store: Store

    func register(on router: Router<SpeedyRequestContext>) {
        let store = self.store
        router.get("/v1/chunks/{group}/{fileId}/users") { _, context in
            let group = try context.wholeNumber("group", as: UInt32.self)
            let fileId = try context.wholeNumber("fileId", as: UInt64.self)
            return try JSONResponse.make(try await store.chunkUsers(group: group, fileId: fileId))
        }
    }
}

extension SpeedyRequestContext {
    /// Path parameter `name` as a number of type `T`: decimal digits only (no sign, no spaces)
    /// that fit `T`, else ``SpeedyCore/MetadataError/invalid(_:)`` (400).
    func wholeNumber<T: FixedWidthInteger & UnsignedInteger>(_ name: String, as type: T.Type) throws(MetadataError) -> T {
        let text = parameters.get(name) ?? ""
        // `T.init` alone takes a leading "+"; overflow makes it nil.
        guard !text.isEmpty, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let value = T(text) else {
            throw .invalid("the \(name) must be a whole number up to \(T.max), got '\(text)'")
        }
        return value
    }
}

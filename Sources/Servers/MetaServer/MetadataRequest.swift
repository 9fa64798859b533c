import Hummingbird
import ServerSupport
import SpeedyCore

/// How the metaserver's routes read their arguments: a missing or malformed one is
/// ``SpeedyCore/MetadataError/invalid(_:)`` (400).
extension Request {
    /// Query parameter `name`, which must be there and not empty.
    func requiredQuery(_ name: String) throws -> String {
        guard let value = uri.queryParameters[Substring(name)], !value.isEmpty else {
            throw MetadataError.invalid("query parameter '\(name)' is required")
        }
        return String(value)
    }

    /// The `repo` query parameter, a valid repository name.
    func repository() throws -> String {
        let name = try requiredQuery("repo")
        guard OCINames.isValidRepository(name) else { throw MetadataError.invalid("'\(name)' is not a valid repository name") }
        return name
    }

    /// `perRepository` and `perClient`; an absent one is unlimited.
    func uploadLimits() throws -> UploadLimits {
        UploadLimits(
            perRepository: try queryInteger("perRepository", as: Int.self) ?? UploadLimits.unlimited.perRepository,
            perClient: try queryInteger("perClient", as: Int.self) ?? UploadLimits.unlimited.perClient)
    }
}

extension SpeedyRequestContext {
    /// The `{digest}` path parameter, parsed.
    func digest() throws -> Digest {
        let text = parameters.get("digest") ?? ""
        guard let digest = Digest(parsing: text) else { throw MetadataError.invalid("'\(text)' is not a digest") }
        return digest
    }
}

import HTTPTypes
import Foundation
import ServerSupport
import SpeedyCore

/// What the registry must know of a pushed manifest: its type, what it references, its subject.
struct ParsedManifest {
    /// The manifest's media type.
    var mediaType: String
    /// Blobs it references (config and layers), which must exist in the repository.
    var blobs: [Digest]
    /// Manifests it references (an index's entries), which must exist in the repository.
    var manifests: [Digest]
    var subject: Digest?
    var artifactType: String?
    var annotations: [String: String]?
}

/// Checks a pushed manifest (OCI image manifest or index, Docker schema 2 manifest or list).
enum ManifestParser {
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let ociIndex = "application/vnd.oci.image.index.v1+json"
    static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

    private struct DescriptorJSON: Decodable {
        var mediaType: String?
        var digest: String
        var size: Int64
        var urls: [String]?
    }

    private struct ManifestJSON: Decodable {
        var schemaVersion: Int?
        var mediaType: String?
        var artifactType: String?
        var config: DescriptorJSON?
        var layers: [DescriptorJSON]?
        var manifests: [DescriptorJSON]?
        var subject: DescriptorJSON?
        var annotations: [String: String]?
    }

    /// Parses `content`, sent with `contentType` (parameters ignored).
    /// - Throws: `OCIError` MANIFEST_INVALID with what is wrong.
    static func parse(_ content: [UInt8], contentType: String?) throws(OCIError) -> ParsedManifest {
        let manifest: ManifestJSON
        do {
            manifest = try JSONDecoder().decode(ManifestJSON.self, from: Data(content))
        } catch {
            throw .manifestInvalid("manifest is not valid JSON of a known shape: \(error)")
        }
        let headerType = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let mediaType = manifest.mediaType ?? headerType, !mediaType.isEmpty else {
            throw .manifestInvalid("the manifest has no mediaType and the request no Content-Type")
        }
        if let declared = manifest.mediaType, let headerType, headerType != declared, headerType != "application/json" {
            throw .manifestInvalid("Content-Type \(headerType) does not match the manifest's mediaType \(declared)")
        }
        guard manifest.schemaVersion == 2 else { throw .manifestInvalid("schemaVersion must be 2") }

        func digest(_ descriptor: DescriptorJSON, _ field: String) throws(OCIError) -> Digest {
            guard let digest = Digest(parsing: descriptor.digest) else {
                throw .manifestInvalid("\(field) has an invalid digest '\(descriptor.digest)'")
            }
            guard descriptor.size >= 0 else { throw .manifestInvalid("\(field) has a negative size") }
            return digest
        }

        var parsed = ParsedManifest(
            mediaType: mediaType, blobs: [], manifests: [], subject: nil, artifactType: manifest.artifactType,
            annotations: manifest.annotations)
        if let subject = manifest.subject { parsed.subject = try digest(subject, "subject") }
        switch mediaType {
        case ociManifest, dockerManifest:
            guard let config = manifest.config else { throw .manifestInvalid("an image manifest needs a config descriptor") }
            parsed.blobs.append(try digest(config, "config"))
            for (i, layer) in (manifest.layers ?? []).enumerated() {
                let d = try digest(layer, "layers[\(i)]")
                // Foreign layers live elsewhere (their urls); the registry need not have them.
                let foreign = (layer.mediaType ?? "").contains("foreign") || (layer.mediaType ?? "").contains("nondistributable")
                if !(foreign && !(layer.urls ?? []).isEmpty) { parsed.blobs.append(d) }
            }
            if parsed.artifactType == nil { parsed.artifactType = config.mediaType }
        case ociIndex, dockerList:
            guard let entries = manifest.manifests else { throw .manifestInvalid("an index needs a manifests list") }
            for (i, entry) in entries.enumerated() { parsed.manifests.append(try digest(entry, "manifests[\(i)]")) }
        default:
            throw .manifestInvalid("unsupported manifest media type \(mediaType)")
        }
        return parsed
    }
}

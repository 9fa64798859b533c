import Foundation

/// What the registry must know of a pushed manifest: its type, what it references, its subject.
package struct ParsedManifest {
    /// The manifest's media type.
    package var mediaType: String
    /// Blobs it references (config and layers), which must exist in the repository.
    package var blobs: [Digest]
    /// Manifests it references (an index's entries), which must exist in the repository.
    package var manifests: [Digest]
    package var subject: Digest?
    package var artifactType: String?
    package var annotations: [String: String]?
}

/// Why a pushed manifest is refused.
package struct ManifestError: Error, Sendable, CustomStringConvertible {
    /// What is wrong, for the client.
    package let reason: String

    init(_ reason: String) { self.reason = reason }

    package var description: String { reason }
}

/// Checks a pushed manifest (OCI image manifest or index, Docker schema 2 manifest or list).
package enum ManifestParser {
    package static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    package static let ociIndex = "application/vnd.oci.image.index.v1+json"
    package static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    package static let dockerList = "application/vnd.docker.distribution.manifest.list.v2+json"

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
    /// - Throws: ``ManifestError`` with what is wrong (the API answers it as MANIFEST_INVALID).
    package static func parse(_ content: [UInt8], contentType: String?) throws(ManifestError) -> ParsedManifest {
        let manifest: ManifestJSON
        do {
            manifest = try JSONDecoder().decode(ManifestJSON.self, from: Data(content))
        } catch {
            throw ManifestError("manifest is not valid JSON of a known shape: \(error)")
        }
        let headerType = contentType?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) }
        guard let mediaType = manifest.mediaType ?? headerType, !mediaType.isEmpty else {
            throw ManifestError("the manifest has no mediaType and the request no Content-Type")
        }
        if let declared = manifest.mediaType, let headerType, headerType != declared, headerType != "application/json" {
            throw ManifestError("Content-Type \(headerType) does not match the manifest's mediaType \(declared)")
        }
        guard manifest.schemaVersion == 2 else { throw ManifestError("schemaVersion must be 2") }

        func digest(_ descriptor: DescriptorJSON, _ field: String) throws(ManifestError) -> Digest {
            guard let digest = Digest(parsing: descriptor.digest) else {
                throw ManifestError("\(field) has an invalid digest '\(descriptor.digest)'")
            }
            guard descriptor.size >= 0 else { throw ManifestError("\(field) has a negative size") }
            return digest
        }

        var parsed = ParsedManifest(
            mediaType: mediaType, blobs: [], manifests: [], subject: nil, artifactType: manifest.artifactType,
            annotations: manifest.annotations)
        if let subject = manifest.subject { parsed.subject = try digest(subject, "subject") }
        switch mediaType {
        case ociManifest, dockerManifest:
            guard let config = manifest.config else { throw ManifestError("an image manifest needs a config descriptor") }
            parsed.blobs.append(try digest(config, "config"))
            for (i, layer) in (manifest.layers ?? []).enumerated() {
                let d = try digest(layer, "layers[\(i)]")
                // Foreign layers live elsewhere (their urls); the registry need not have them.
                let foreign = (layer.mediaType ?? "").contains("foreign") || (layer.mediaType ?? "").contains("nondistributable")
                if !(foreign && !(layer.urls ?? []).isEmpty) { parsed.blobs.append(d) }
            }
            if parsed.artifactType == nil { parsed.artifactType = config.mediaType }
        case ociIndex, dockerList:
            guard let entries = manifest.manifests else { throw ManifestError("an index needs a manifests list") }
            for (i, entry) in entries.enumerated() { parsed.manifests.append(try digest(entry, "manifests[\(i)]")) }
        default:
            throw ManifestError("unsupported manifest media type \(mediaType)")
        }
        return parsed
    }
}

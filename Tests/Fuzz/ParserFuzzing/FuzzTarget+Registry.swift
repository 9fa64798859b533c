import Foundation
import SpeedyCore

/// The registry API's parsers: what a docker, podman or skopeo request carries.
extension FuzzTarget {
    static let registry: [FuzzTarget] = [range, contentRange, digest, path, manifest, authChallenge]

    /// An upstream registry's `WWW-Authenticate` challenge (the pull-through cache reads them):
    /// what parses has a lower-case scheme and comes back the same when written out again, every
    /// value quoted.
    static let authChallenge = FuzzTarget("auth-challenge", "an upstream registry's WWW-Authenticate header") { input in
        guard let challenge = AuthChallenge(parsing: text(input)) else { return nil }
        func quoted(_ value: String) -> String {
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        let written = challenge.scheme + " " + challenge.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\(quoted($0.value))" }.joined(separator: ", ")
        return first(
            expect(challenge.scheme == challenge.scheme.lowercased() && !challenge.scheme.isEmpty, "scheme \(challenge.scheme)"),
            expect(written.utf8.count > AuthChallenge.maximumLength || AuthChallenge(parsing: written) == challenge, "\(written.debugDescription) parses differently"))
    }

    /// `Range: bytes=…` on a blob GET. The first three bytes are the blob's length, so the same
    /// header meets lengths from 0 up.
    static let range = FuzzTarget("range", "a blob GET's Range header against a blob's length") { input in
        let length = input.prefix(3).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let header = text(Array(input.dropFirst(3)))
        guard case .partial(let range) = ByteRangeRequest.resolve(header, length: length) else { return nil }
        return expect(range.upperBound < length, "range \(range) past a blob of \(length) bytes from \(header.debugDescription)")
    }

    /// An upload's `Content-Range`: what parses is ordered and prints back to itself.
    static let contentRange = FuzzTarget("content-range", "an upload PATCH's Content-Range header") { input in
        guard let range = UploadContentRange(parsing: text(input)) else { return nil }
        return first(
            expect(range.end >= range.start, "end before start"),
            expect((range.length == nil) == (range.start == 0 && range.end == .max), "length of \(range.start)-\(range.end)"),
            expect(UploadContentRange(parsing: "\(range.start)-\(range.end)") == range, "\(range.start)-\(range.end) parses differently"))
    }

    /// A digest in a path, a query (`?digest=`) or a manifest: what parses prints back to itself.
    static let digest = FuzzTarget("digest", "a digest (sha256:… or sha512:…)") { input in
        guard let digest = Digest(parsing: text(input)) else { return nil }
        return expect(Digest(parsing: digest.description) == digest, "\(digest) parses differently")
    }

    /// A path under `/v2/`: what parses names what it was made from, and is rebuilt from its parts.
    static let path = FuzzTarget("path", "a registry API path and the names in it") { input in
        let raw = text(input)
        guard let path = OCIPath(path: raw) else { return nil }
        if let name = path.name { _ = OCINames.isValidRepository(name) }
        guard let rebuilt = rebuild(path) else { return nil }
        return expect(OCIPath(path: rebuilt) == path, "\(raw.debugDescription) rebuilt as \(rebuilt.debugDescription) parses differently")
    }

    /// A path's text from its parts (nil for the fixed ones).
    private static func rebuild(_ path: OCIPath) -> String? {
        switch path {
        case .base, .catalog: nil
        case .tags(let name): "/v2/\(name)/tags/list"
        case .manifest(let name, let reference): "/v2/\(name)/manifests/\(reference)"
        case .blob(let name, let digest): "/v2/\(name)/blobs/\(digest)"
        case .uploads(let name): "/v2/\(name)/blobs/uploads/"
        case .upload(let name, let id): "/v2/\(name)/blobs/uploads/\(id)"
        case .referrers(let name, let digest): "/v2/\(name)/referrers/\(digest)"
        case .chunkMap(let name, let digest): "/v2/\(name)/_speedy/chunks/\(digest)"
        }
    }

    /// The Content-Types a manifest PUT comes with; the first input byte picks one.
    private static let manifestTypes: [String?] = [
        nil, ManifestParser.ociManifest, ManifestParser.ociIndex, ManifestParser.dockerManifest, ManifestParser.dockerList,
        "application/json", "application/vnd.oci.image.manifest.v1+json; charset=utf-8",
    ]

    /// A pushed manifest: what is accepted has a media type and only digests that print back.
    static let manifest = FuzzTarget("manifest", "a manifest PUT's body (first byte: its Content-Type)") { input in
        guard let selector = input.first else { return nil }
        let contentType = manifestTypes[Int(selector) % manifestTypes.count]
        guard let parsed = try? ManifestParser.parse(Array(input.dropFirst()), contentType: contentType) else { return nil }
        let digests = parsed.blobs + parsed.manifests + (parsed.subject.map { [$0] } ?? [])
        return first(
            expect(!parsed.mediaType.isEmpty, "accepted without a media type"),
            expect(digests.allSatisfy { Digest(parsing: $0.description) == $0 }, "a referenced digest parses differently"))
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where one piece of a blob lives: a chunk of a group, with its length and CRC.
public struct ChunkRef: Sendable, Hashable, Codable {
    /// The group holding every replica.
    public var group: UInt32
    /// The chunk's file id.
    public var fileId: UInt64
    /// Payload bytes.
    public var length: UInt32
    /// Payload CRC-32C.
    public var crc: UInt32

    /// Creates a reference.
    public init(group: UInt32, fileId: UInt64, length: UInt32, crc: UInt32) {
        self.group = group
        self.fileId = fileId
        self.length = length
        self.crc = crc
    }

    /// The chunk's key on a chunkserver.
    public var key: ChunkKey { ChunkKey(group: group, fileId: fileId) }
}

/// A stored blob: its digest, size and the chunks that hold its bytes, in order.
public struct BlobRecord: Sendable, Equatable, Codable {
    /// Content digest.
    public var digest: Digest
    /// Total bytes; the sum of the chunks' lengths.
    public var size: UInt64
    /// The chunks, in order. Lengths may differ (an upload's requests end where they end).
    public var chunks: [ChunkRef]

    /// Creates a record.
    public init(digest: Digest, size: UInt64, chunks: [ChunkRef]) {
        self.digest = digest
        self.size = size
        self.chunks = chunks
    }
}

/// A manifest as stored: its exact bytes and what the registry needs without parsing them again.
public struct ManifestRecord: Sendable, Equatable, Codable {
    /// The repository it was pushed to.
    public var repository: String
    /// Digest of `content`.
    public var digest: Digest
    /// Its media type (from the body's `mediaType`, else the request's Content-Type).
    public var mediaType: String
    /// The exact bytes the client pushed.
    public var content: [UInt8]
    /// The manifest this one refers to (`subject`), for the referrers API.
    public var subject: Digest?
    /// `artifactType`, else the config's media type (image manifests), for the referrers API.
    public var artifactType: String?
    /// Top-level annotations, for the referrers API.
    public var annotations: [String: String]?
    /// What the manifest refers to, as the imageserver checked it. When given, the store checks
    /// again, in the transaction that stores the manifest, that each still exists, so garbage
    /// collection can never delete one between the check and the store (docs/gc.md).
    public var references: ManifestReferences?

    /// Creates a record.
    public init(
        repository: String, digest: Digest, mediaType: String, content: [UInt8],
        subject: Digest? = nil, artifactType: String? = nil, annotations: [String: String]? = nil,
        references: ManifestReferences? = nil
    ) {
        self.repository = repository
        self.digest = digest
        self.mediaType = mediaType
        self.content = content
        self.subject = subject
        self.artifactType = artifactType
        self.annotations = annotations
        self.references = references
    }

    private enum CodingKeys: String, CodingKey {
        case repository, digest, mediaType, content, subject, artifactType, annotations, references
    }

    /// With this set in an encoder's `userInfo`, `content` is written as base64; else as an array
    /// of numbers, which every release reads. Arrays are four times longer, and most of a manifest
    /// GET's time went to encoding and parsing them: a metaserver answers in base64 to imageservers
    /// that ask for it (`content=base64`), which older metaservers ignore. Both forms are read.
    public static let base64ContentKey = CodingUserInfoKey(rawValue: "speedy.manifest-content-base64")!

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(repository, forKey: .repository)
        try container.encode(digest, forKey: .digest)
        try container.encode(mediaType, forKey: .mediaType)
        if encoder.userInfo[Self.base64ContentKey] as? Bool == true {
            try container.encode(Data(content).base64EncodedString(), forKey: .content)
        } else {
            try container.encode(content, forKey: .content)
        }
        try container.encodeIfPresent(subject, forKey: .subject)
        try container.encodeIfPresent(artifactType, forKey: .artifactType)
        try container.encodeIfPresent(annotations, forKey: .annotations)
        try container.encodeIfPresent(references, forKey: .references)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        repository = try container.decode(String.self, forKey: .repository)
        digest = try container.decode(Digest.self, forKey: .digest)
        mediaType = try container.decode(String.self, forKey: .mediaType)
        if let text = try? container.decode(String.self, forKey: .content) {
            guard let bytes = Data(base64Encoded: text) else {
                throw DecodingError.dataCorruptedError(forKey: .content, in: container, debugDescription: "content is not base64")
            }
            content = [UInt8](bytes)
        } else {
            content = try container.decode([UInt8].self, forKey: .content)
        }
        subject = try container.decodeIfPresent(Digest.self, forKey: .subject)
        artifactType = try container.decodeIfPresent(String.self, forKey: .artifactType)
        annotations = try container.decodeIfPresent([String: String].self, forKey: .annotations)
        references = try container.decodeIfPresent(ManifestReferences.self, forKey: .references)
    }
}

/// The blobs and manifests one manifest refers to: the edges garbage collection follows.
public struct ManifestReferences: Sendable, Equatable, Codable {
    /// Config and layers (foreign layers with URLs excluded).
    public var blobs: [Digest]
    /// An index's entries.
    public var manifests: [Digest]

    /// Creates a reference list.
    public init(blobs: [Digest], manifests: [Digest]) {
        self.blobs = blobs
        self.manifests = manifests
    }
}

/// An OCI descriptor, as the referrers API lists them.
public struct Descriptor: Sendable, Equatable, Codable {
    public var mediaType: String
    public var digest: Digest
    public var size: Int64
    public var artifactType: String?
    public var annotations: [String: String]?

    /// Creates a descriptor.
    public init(mediaType: String, digest: Digest, size: Int64, artifactType: String? = nil, annotations: [String: String]? = nil) {
        self.mediaType = mediaType
        self.digest = digest
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
    }
}

/// A blob upload in progress. Kept by the metaserver so any imageserver can continue it.
public struct UploadSession: Sendable, Equatable, Codable {
    /// The session id (a UUID), the last part of the upload URL.
    public var id: String
    /// The repository the blob is pushed to.
    public var repository: String
    /// Bytes received so far; the next request must start here.
    public var offset: UInt64
    /// Chunks written so far, in order.
    public var chunks: [ChunkRef]
    /// The SHA-256 state after `offset` bytes (see ``SHA256Hasher/savedState``).
    public var hashState: [UInt8]
    /// When the session began, in milliseconds since the epoch.
    public var createdMs: Int64

    /// Creates a session.
    public init(id: String, repository: String, offset: UInt64, chunks: [ChunkRef], hashState: [UInt8], createdMs: Int64) {
        self.id = id
        self.repository = repository
        self.offset = offset
        self.chunks = chunks
        self.hashState = hashState
        self.createdMs = createdMs
    }
}

/// One page of names (tags or repositories) in lexical order.
public struct NamePage: Sendable, Equatable, Codable {
    /// The names.
    public var names: [String]
    /// Whether more names follow the last one.
    public var more: Bool

    /// Creates a page.
    public init(names: [String], more: Bool) {
        self.names = names
        self.more = more
    }
}

/// One chunk something in the metadata refers to: what `chunktool fsck` checks the chunkservers for.
public struct ChunkReference: Sendable, Equatable, Codable {
    /// The chunk's file id within the group asked about.
    public var fileId: UInt64
    /// Its length in bytes.
    public var length: UInt32
    /// Its CRC-32C.
    public var crc: UInt32
    /// What refers to it: a blob digest (`sha256:…`); `upload:<id>` for a chunk appended to an
    /// upload in progress, `held:<id>` for one a request streaming into it holds; `moved:<digest>`
    /// for a chunk a drain or rebalance copied elsewhere for that blob, kept until garbage
    /// collection's grace has passed (pulls that read the old chunk list may still read it).
    public var owner: String

    /// Creates a reference.
    public init(fileId: UInt64, length: UInt32, crc: UInt32, owner: String) {
        self.fileId = fileId
        self.length = length
        self.crc = crc
        self.owner = owner
    }
}

/// A page of ``ChunkReference``s in ascending file id order.
public struct ChunkReferencePage: Sendable, Equatable, Codable {
    /// The references.
    public var references: [ChunkReference]
    /// Pass as `after` for the next page; nil on the last page.
    public var nextAfter: UInt64?

    /// Creates a page.
    public init(references: [ChunkReference], nextAfter: UInt64?) {
        self.references = references
        self.nextAfter = nextAfter
    }
}

/// The groups any blob or upload refers to (`GET /v1/chunk-groups` on the metaserver).
public struct ReferencedGroups: Sendable, Equatable, Codable {
    /// Group ids, ascending.
    public var groups: [UInt32]

    /// Creates the list.
    public init(groups: [UInt32]) { self.groups = groups }
}

/// How many upload sessions may be open at once, per repository and per client; what keeps one
/// careless or hostile client from filling the metaserver with sessions it never finishes.
public struct UploadLimits: Sendable, Equatable, Codable {
    /// Open sessions one repository may have.
    public var perRepository: Int
    /// Open sessions one client (an address, or `user:<name>`) may have.
    public var perClient: Int

    /// No caps.
    public static let unlimited = UploadLimits(perRepository: .max, perClient: .max)

    /// Creates limits.
    public init(perRepository: Int, perClient: Int) {
        self.perRepository = perRepository
        self.perClient = perClient
    }
}

/// A page of blob records in ascending digest order (`chunktool fsck --deep` walks them all).
public struct BlobPage: Sendable, Equatable, Codable {
    /// The records, with their chunks.
    public var blobs: [BlobRecord]
    /// Pass as `after` for the next page; nil on the last page.
    public var nextAfter: String?

    /// Creates a page.
    public init(blobs: [BlobRecord], nextAfter: String?) {
        self.blobs = blobs
        self.nextAfter = nextAfter
    }
}

/// A tag with what retention weighs about it (docs/gc.md, "Retention").
public struct TagDetail: Sendable, Equatable, Codable {
    /// The tag.
    public var tag: String
    /// The manifest it names.
    public var digest: Digest
    /// When it was last pushed (set), in milliseconds since the epoch.
    public var pushedMs: Int64
    /// When it was last pulled, as the imageservers recorded it; 0 when never.
    public var pulledMs: Int64

    public init(tag: String, digest: Digest, pushedMs: Int64, pulledMs: Int64) {
        self.tag = tag
        self.digest = digest
        self.pushedMs = pushedMs
        self.pulledMs = pulledMs
    }
}

/// One page of a repository's tags with their details, in byte order of the tag.
public struct TagDetailPage: Sendable, Equatable, Codable {
    public var tags: [TagDetail]
    /// Whether more tags follow the last one.
    public var more: Bool

    public init(tags: [TagDetail], more: Bool) {
        self.tags = tags
        self.more = more
    }
}

/// A pull of a tag, as an imageserver batches them for the metaserver.
public struct TagPull: Sendable, Equatable, Hashable, Codable {
    public var repository: String
    public var tag: String
    /// When, in milliseconds since the epoch.
    public var pulledMs: Int64

    public init(repository: String, tag: String, pulledMs: Int64) {
        self.repository = repository
        self.tag = tag
        self.pulledMs = pulledMs
    }
}

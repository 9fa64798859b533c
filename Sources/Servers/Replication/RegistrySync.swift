import Foundation
import RegistryClient
import SpeedyCore

/// Copies repositories from one registry to another by the OCI API, as `chunktool sync` does
/// (docs/registry.md, "Replication"): manifests byte for byte (so every digest stays the same),
/// each blob only when the destination lacks it (`HEAD`), children of an index before the index,
/// blobs before their manifest, and referrers (signatures, SBOMs) along with their subject, by
/// the referrers API where the source has it and by the `sha256-<hex>.*` tag schema (which tools
/// that predate the API use, on any registry). A tag the destination already has with the same
/// digest is left as it is, so a run that was interrupted resumes where it stopped when run again.
public struct RegistrySync: Sendable {
    /// The registry copied from.
    public let source: RegistryClient
    /// The registry copied to.
    public let destination: RegistryClient
    /// Removes destination tags (matching a rule) that the source no longer has.
    public let deleteMissing: Bool

    /// Copies from `source` to `destination`; with `deleteMissing`, also deletes there the tags a
    /// rule covers that the source no longer has.
    public init(source: RegistryClient, destination: RegistryClient, deleteMissing: Bool) {
        self.source = source
        self.destination = destination
        self.deleteMissing = deleteMissing
    }

    /// What a run did.
    public struct Report: Codable, Sendable {
        public var repositories = 0
        public var tagsCopied = 0
        public var tagsUpToDate = 0
        public var tagsDeleted = 0
        public var manifestsCopied = 0
        public var referrersCopied = 0
        public var blobsCopied = 0
        public var blobsPresent = 0
        public var bytesCopied: UInt64 = 0
        public var failures: [String] = []
        public var durationMs: Int64 = 0

        /// A report of nothing done yet.
        public init() {}

        /// Whether the run changed the destination (copied or deleted anything).
        public var changedAnything: Bool { tagsCopied + tagsDeleted + manifestsCopied + referrersCopied > 0 }

        /// One line for people.
        public var summary: String {
            "sync: \(tagsCopied) tags copied, \(tagsUpToDate) up to date, \(tagsDeleted) deleted in \(repositories) repositories; "
                + "\(blobsCopied) blobs copied (\(ByteSize.format(bytesCopied))), \(blobsPresent) already there; \(referrersCopied) referrers"
                + (failures.isEmpty ? "" : "; \(failures.count) failed")
        }
    }

    /// One repository to copy, with the tags to copy.
    public struct Plan: Sendable {
        public var source: String
        public var destination: String
        public var rule: SyncRule
        public var tags: [String]
        /// Every tag of the source repository (the referrers tag schema is looked up in it).
        public var allTags: [String]
    }

    /// The repositories and tags `rules` name on the source. A repository that cannot be listed
    /// (missing, refused) is a failure noted in `failures`, and the others go on; only a catalog
    /// that cannot be read (for a pattern) stops the run.
    public func plan(_ rules: [SyncRule], failures: inout [String]) async throws(RegistryClientError) -> [Plan] {
        var catalog: [String]?
        var plans: [Plan] = []
        for rule in rules {
            var names = [rule.sourceText]
            if rule.isPattern {
                if catalog == nil { catalog = try await source.repositories() }
                // Names come from the source: only those of the OCI grammar make paths here.
                names = (catalog ?? []).filter { OCINames.isValidRepository($0) && rule.source.matches($0) }
            }
            for name in names {
                let tags: [String]
                do {
                    tags = try await source.tags(name).filter { OCINames.isValidTag($0) }
                } catch {
                    failures.append("\(name): cannot list its tags: \(error)")
                    continue
                }
                let copied = tags.filter { rule.copies($0) && RetentionPlan.subject(ofSchemaTag: $0) == nil }
                plans.append(Plan(source: name, destination: rule.destination(of: name), rule: rule, tags: copied.sorted(), allTags: tags))
            }
        }
        return plans
    }

    /// Copies one planned repository; `tagDone` hears of each tag as it ends, with the bytes
    /// copied so far.
    public func run(_ plan: Plan, into report: inout Report, tagDone: (String, UInt64) -> Void) async {
        report.repositories += 1
        var copied: Set<Digest> = []
        for tag in plan.tags {
            do {
                try await copyTag(tag, plan, copied: &copied, report: &report)
            } catch {
                report.failures.append("\(plan.source):\(tag) -> \(plan.destination): \(error)")
            }
            tagDone(tag, report.bytesCopied)
        }
        if deleteMissing { await deleteMissingTags(plan, report: &report) }
    }

    // MARK: Copying

    private func copyTag(_ tag: String, _ plan: Plan, copied: inout Set<Digest>, report: inout Report) async throws(RegistryClientError) {
        let manifest = try await source.manifest(plan.source, reference: tag)
        if try await destinationDigest(plan.destination, tag) == manifest.digest {
            report.tagsUpToDate += 1
        } else {
            try await copyTree(manifest, plan, copied: &copied, report: &report)
            try await destination.putManifest(plan.destination, reference: tag, content: manifest.content, mediaType: manifest.mediaType)
            report.tagsCopied += 1
        }
        try await copyReferrers(of: manifest.digest, plan, copied: &copied, report: &report)
    }

    /// The digest the destination's tag names now; nil when it has no such tag.
    private func destinationDigest(_ repository: String, _ reference: String) async throws(RegistryClientError) -> Digest? {
        do {
            return try await destination.manifestDigest(repository, reference: reference)
        } catch .notFound {
            return nil
        }
    }

    /// Copies what `manifest` needs to be pushed: its blobs, and for an index its child
    /// manifests (each with what it needs, then itself by digest).
    private func copyTree(_ manifest: RegistryClient.Manifest, _ plan: Plan, copied: inout Set<Digest>, report: inout Report)
        async throws(RegistryClientError)
    {
        let parsed: ParsedManifest
        do {
            parsed = try ManifestParser.parse(manifest.content, contentType: manifest.mediaType)
        } catch {
            throw .invalidAnswer("manifest \(manifest.digest) does not parse: \(error.reason)")
        }
        for child in parsed.manifests where !copied.contains(child) {
            copied.insert(child)
            if try await destinationDigest(plan.destination, child.description) != child {
                let fetched = try await source.manifest(plan.source, reference: child.description)
                try await copyTree(fetched, plan, copied: &copied, report: &report)
                try await destination.putManifest(plan.destination, reference: child.description, content: fetched.content, mediaType: fetched.mediaType)
                report.manifestsCopied += 1
            }
            // A platform's own signatures (`cosign sign --recursive`) go with it.
            try await copyReferrers(of: child, plan, copied: &copied, report: &report)
        }
        for blob in parsed.blobs { try await copyBlob(blob, plan, report: &report) }
    }

    private func copyBlob(_ digest: Digest, _ plan: Plan, report: inout Report) async throws(RegistryClientError) {
        if try await destination.hasBlob(plan.destination, digest: digest) {
            report.blobsPresent += 1
            return
        }
        let blob = try await source.blob(plan.source, digest: digest)
        guard let size = blob.size else { throw .invalidAnswer("blob \(digest) came without a Content-Length") }
        // The destination checks the digest of what it receives: a source that sent other bytes
        // fails the push, and nothing is stored under the digest.
        try await destination.pushBlob(plan.destination, digest: digest, size: size, body: blob.body)
        report.blobsCopied += 1
        report.bytesCopied += size
    }

    /// Copies the referrers of `subject` (and theirs): those the referrers API lists, where the
    /// source has it, and the source's `sha256-<hex>.*` tags.
    private func copyReferrers(of subject: Digest, _ plan: Plan, copied: inout Set<Digest>, report: inout Report) async throws(RegistryClientError) {
        if let referrers = try await source.referrers(plan.source, of: subject) {
            for referrer in referrers where !copied.contains(referrer.digest) {
                copied.insert(referrer.digest)
                // Copied by an earlier run: its own referrers may still be new.
                if try await destinationDigest(plan.destination, referrer.digest.description) == referrer.digest {
                    try await copyReferrers(of: referrer.digest, plan, copied: &copied, report: &report)
                    continue
                }
                let fetched = try await source.manifest(plan.source, reference: referrer.digest.description)
                try await copyTree(fetched, plan, copied: &copied, report: &report)
                try await destination.putManifest(plan.destination, reference: referrer.digest.description, content: fetched.content, mediaType: fetched.mediaType)
                report.referrersCopied += 1
                try await copyReferrers(of: referrer.digest, plan, copied: &copied, report: &report)
            }
        }
        // Tools that predate the API tag their artifacts instead, on registries with it too.
        for tag in plan.allTags where RetentionPlan.subject(ofSchemaTag: tag) == subject {
            let fetched = try await source.manifest(plan.source, reference: tag)
            if try await destinationDigest(plan.destination, tag) == fetched.digest { continue }
            try await copyTree(fetched, plan, copied: &copied, report: &report)
            try await destination.putManifest(plan.destination, reference: tag, content: fetched.content, mediaType: fetched.mediaType)
            report.referrersCopied += 1
        }
    }

    /// Deletes the destination's tags that the rule covers and the source does not have. A source
    /// with no tag at all deletes nothing: an empty listing is more likely a mistake (a renamed
    /// repository, a login that sees nothing) than a wish to empty the destination.
    private func deleteMissingTags(_ plan: Plan, report: inout Report) async {
        let kept = Set(plan.allTags)
        guard !kept.isEmpty else {
            report.failures.append("\(plan.source) lists no tags: nothing deleted from \(plan.destination)")
            return
        }
        do {
            let present: [String]
            do {
                present = try await destination.tags(plan.destination)
            } catch .notFound {
                present = []
            }
            for tag in present where plan.rule.copies(tag) && !kept.contains(tag) {
                do {
                    try await destination.deleteTag(plan.destination, tag: tag)
                    report.tagsDeleted += 1
                } catch {
                    report.failures.append("delete \(plan.destination):\(tag): \(error)")
                }
            }
        } catch {
            report.failures.append("tags of \(plan.destination): \(error)")
        }
    }
}

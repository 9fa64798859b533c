import Logging
import SpeedyCore

/// Applies the retention rules to every repository a rule matches: reads its tags, decides with
/// ``RetentionPlan``, and deletes the tags that go, each only if it was not pushed again since it
/// was read (docs/gc.md, "Retention"). Only tags go: the manifests and blobs they leave untagged
/// are garbage collection's to sweep, by its own rules and grace.
public struct RetentionSweep: Sendable {
    let meta: any MetadataStore
    let logger: Logger

    /// Repositories and tags are read this many at a time.
    static let pageSize = 1000

    /// A sweep over `meta` (the metaserver's own store, or a ``MetaClient``).
    public init(meta: any MetadataStore, logger: Logger) {
        self.meta = meta
        self.logger = logger
    }

    /// Runs `policy` over every repository; with `dryRun`, deletes nothing.
    public func run(_ policy: RetentionPolicy, dryRun: Bool, nowMs: Int64 = currentTimeMillis()) async throws(MetadataError) -> RetentionReport {
        let start = ContinuousClock.now
        var report = RetentionReport(dryRun: dryRun)
        var after: String?
        repeat {
            let page = try await meta.repositories(after: after, limit: Self.pageSize)
            for repository in page.names {
                guard let rule = policy.rule(for: repository) else { continue }
                report.repositories += 1
                try await apply(rule, to: repository, dryRun: dryRun, nowMs: nowMs, into: &report)
            }
            after = page.names.last
            if !page.more { break }
        } while true
        report.durationMs = Int64((ContinuousClock.now - start) / .milliseconds(1))
        if !dryRun, report.tagsRemoved > 0 { logger.notice("\(report.summary)") }
        return report
    }

    private func apply(_ rule: RetentionPolicy.Rule, to repository: String, dryRun: Bool, nowMs: Int64, into report: inout RetentionReport)
        async throws(MetadataError)
    {
        let verdicts = RetentionPlan.decide(try await tags(of: repository), rule: rule, nowMs: nowMs)
        // Ordinary tags first, then the referrers-schema tags of subjects that lost their last
        // tag: one whose subject's tag was pushed again meanwhile (so kept) stays with it.
        let ordered = verdicts.filter { RetentionPlan.subject(ofSchemaTag: $0.tag.tag) == nil }
            + verdicts.filter { RetentionPlan.subject(ofSchemaTag: $0.tag.tag) != nil }
        var stillTagged: Set<Digest> = []
        for verdict in ordered {
            let subject = RetentionPlan.subject(ofSchemaTag: verdict.tag.tag)
            guard !verdict.keep, subject.map({ !stillTagged.contains($0) }) ?? true else {
                report.tagsKept += 1
                continue
            }
            if !dryRun, try await !meta.deleteTag(verdict.tag, in: repository) {
                report.tagsPushedMeanwhile += 1
                report.tagsKept += 1
                if subject == nil { stillTagged.insert(verdict.tag.digest) }
                continue
            }
            report.tagsRemoved += 1
            if report.removals.count < RetentionReport.maximumListed {
                let tag = verdict.tag
                report.removals.append(
                    RetentionReport.Removal(
                        repository: repository, tag: tag.tag, digest: tag.digest, pushedMs: tag.pushedMs, pulledMs: tag.pulledMs, ruleLine: rule.line,
                        reason: verdict.reason))
            }
        }
    }

    private func tags(of repository: String) async throws(MetadataError) -> [TagDetail] {
        var tags: [TagDetail] = []
        var after: String?
        repeat {
            let page = try await meta.tagDetails(in: repository, after: after, limit: Self.pageSize)
            tags += page.tags
            after = page.tags.last?.tag
            if !page.more || page.tags.isEmpty { break }
        } while true
        return tags
    }
}

/// What a retention rule decides for one repository's tags (docs/gc.md, "Retention"): each tag is
/// kept when any condition of the rule holds for it, and removed otherwise, with the reason.
///
/// Tags of the referrers tag schema (`sha256-<hex>`, `sha256-<hex>.sig`: signatures and
/// attestations pushed by tools that predate the referrers API) are not weighed on their own:
/// one is kept while its subject keeps a tag here, or has none here at all (an index's entry, an
/// untagged manifest), and goes with the last tag of its subject. Removing a tag removes only the
/// tag: a manifest that a kept index lists, or that a kept tag also names, is kept by garbage
/// collection's own rules.
public enum RetentionPlan {
    /// One tag's fate.
    public struct Verdict: Sendable, Equatable {
        public var tag: TagDetail
        public var keep: Bool
        /// Why, in words: the condition that keeps it, or every one it fails.
        public var reason: String
    }

    /// The verdict on each of `tags` (one repository's, all of them) under `rule`, at `nowMs`.
    public static func decide(_ tags: [TagDetail], rule: RetentionPolicy.Rule, nowMs: Int64) -> [Verdict] {
        let regular = tags.filter { subject(ofSchemaTag: $0.tag) == nil }
        let newest: Set<String> =
            if let count = rule.keepNewest {
                Set(regular.sorted { ($0.pushedMs, $1.tag) > ($1.pushedMs, $0.tag) }.prefix(count).map(\.tag))
            } else { [] }
        var verdicts: [String: Verdict] = [:]
        for tag in regular {
            verdicts[tag.tag] = verdict(tag, rule: rule, isNewest: newest.contains(tag.tag), nowMs: nowMs)
        }
        let kept = Set(verdicts.values.filter(\.keep).map(\.tag.digest))
        let tagged = Set(regular.map(\.digest))
        for tag in tags {
            guard let subject = subject(ofSchemaTag: tag.tag) else { continue }
            if kept.contains(subject) {
                verdicts[tag.tag] = Verdict(tag: tag, keep: true, reason: "its subject \(subject) keeps a tag")
            } else if !tagged.contains(subject) {
                verdicts[tag.tag] = Verdict(tag: tag, keep: true, reason: "its subject \(subject) has no tag here")
            } else {
                verdicts[tag.tag] = Verdict(tag: tag, keep: false, reason: "its subject \(subject) loses its last tag")
            }
        }
        return tags.compactMap { verdicts[$0.tag] }
    }

    private static func verdict(_ tag: TagDetail, rule: RetentionPolicy.Rule, isNewest: Bool, nowMs: Int64) -> Verdict {
        if isNewest, let count = rule.keepNewest { return Verdict(tag: tag, keep: true, reason: "among the newest \(count)") }
        if let recent = rule.keepRecent {
            let cutoff = nowMs - Int64(recent / .milliseconds(1))
            if tag.pushedMs >= cutoff { return Verdict(tag: tag, keep: true, reason: "pushed within \(DurationText.format(recent))") }
            if tag.pulledMs >= cutoff { return Verdict(tag: tag, keep: true, reason: "pulled within \(DurationText.format(recent))") }
        }
        if let glob = rule.keepTags.first(where: { $0.matches(tag.tag) }) {
            return Verdict(tag: tag, keep: true, reason: "matches \(glob)")
        }
        var failed: [String] = []
        if let count = rule.keepNewest { failed.append("not among the newest \(count)") }
        let pulled = tag.pulledMs <= 0 ? "never pulled" : "last pulled \(age(nowMs.subtractingReportingOverflow(tag.pulledMs).partialValue)) ago"
        failed.append("pushed \(age(nowMs.subtractingReportingOverflow(tag.pushedMs).partialValue)) ago, \(pulled)")
        if !rule.keepTags.isEmpty { failed.append("matches none of \(rule.keepTags.map(\.description).joined(separator: ","))") }
        return Verdict(tag: tag, keep: false, reason: failed.joined(separator: "; "))
    }

    /// The subject a referrers-schema tag names (`sha256-<64 hex>`, optionally `.<suffix>`).
    public static func subject(ofSchemaTag tag: String) -> Digest? {
        guard tag.hasPrefix("sha256-") else { return nil }
        let hex = tag.dropFirst(7).prefix { $0 != "." }
        guard hex.count == 64 else { return nil }
        return Digest(parsing: "sha256:" + hex)
    }

    /// `3d`, `5h`, `12m`, `40s`: the largest unit, whole.
    static func age(_ milliseconds: Int64) -> String {
        let seconds = max(0, milliseconds / 1000)
        guard seconds < 100 * 365 * 86_400 else { return "over 100 years" }
        if seconds >= 86_400 { return "\(seconds / 86_400)d" }
        if seconds >= 3600 { return "\(seconds / 3600)h" }
        if seconds >= 60 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}

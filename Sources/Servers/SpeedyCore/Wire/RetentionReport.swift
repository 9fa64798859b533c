/// What one run of the retention rules did, or would do (`POST /v1/retention`, `chunktool retention`).
public struct RetentionReport: Sendable, Codable, Equatable {
    /// A tag the rules remove.
    public struct Removal: Sendable, Codable, Equatable {
        public var repository: String
        public var tag: String
        public var digest: Digest
        public var pushedMs: Int64
        /// 0 when never pulled.
        public var pulledMs: Int64
        /// The rule's line in the retention file.
        public var ruleLine: Int
        public var reason: String

        public init(repository: String, tag: String, digest: Digest, pushedMs: Int64, pulledMs: Int64, ruleLine: Int, reason: String) {
            self.repository = repository
            self.tag = tag
            self.digest = digest
            self.pushedMs = pushedMs
            self.pulledMs = pulledMs
            self.ruleLine = ruleLine
            self.reason = reason
        }
    }

    /// The most removals a report lists; the counts cover them all.
    public static let maximumListed = 10_000

    /// Nothing was deleted: the report says what would go.
    public var dryRun: Bool
    /// Repositories a rule applied to.
    public var repositories: Int
    public var tagsKept: Int
    public var tagsRemoved: Int
    /// Tags pushed again between the read and the delete, so kept.
    public var tagsPushedMeanwhile: Int
    /// The removals, up to ``maximumListed``, in repository and tag order.
    public var removals: [Removal]
    public var durationMs: Int64

    public init(dryRun: Bool) {
        self.dryRun = dryRun
        repositories = 0
        tagsKept = 0
        tagsRemoved = 0
        tagsPushedMeanwhile = 0
        removals = []
        durationMs = 0
    }

    /// One line for people and the event log.
    public var summary: String {
        let verb = dryRun ? "would remove" : "removed"
        return "retention: \(verb) \(tagsRemoved) tags, kept \(tagsKept), in \(repositories) repositories"
            + (tagsPushedMeanwhile > 0 ? " (\(tagsPushedMeanwhile) pushed again meanwhile, kept)" : "")
    }
}

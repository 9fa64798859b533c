import Foundation

/// One replication rule, `SOURCE-PATTERN[:TAG-PATTERN] -> DESTINATION`:
///
/// - `team/app -> backup/app`: one repository, every tag, to `backup/app`;
/// - `team/*:v* -> mirror`: each repository `team/X` (from the source's catalog), tags `v*`, to
///   `mirror/team/X`: a pattern's destination is a prefix.
public struct SyncRule: Sendable, Equatable, CustomStringConvertible {
    /// The source repositories.
    public var source: RepositoryPattern
    /// The source pattern as written, and whether it has wildcards (then the catalog is read).
    public var sourceText: String
    /// The tags copied; nil: all.
    public var tags: TagPattern?
    /// The destination repository, or for a pattern the prefix of each.
    public var destination: String

    /// Parses a rule; the error says what is wrong.
    public init(parsing text: String) throws(SyncRuleError) {
        let sides = text.components(separatedBy: "->")
        guard sides.count == 2 else { throw SyncRuleError("'\(text.prefix(200))' is not SOURCE-PATTERN[:TAG-PATTERN] -> DESTINATION") }
        let left = sides[0].trimmingCharacters(in: .whitespaces)
        let destination = sides[1].trimmingCharacters(in: .whitespaces)
        var sourceText = left
        var tags: TagPattern?
        if let colon = left.lastIndex(of: ":") {
            sourceText = String(left[..<colon])
            let tagText = String(left[left.index(after: colon)...])
            guard let pattern = TagPattern(tagText) else { throw SyncRuleError("'\(tagText.prefix(100))' is not a tag pattern (letters, digits, . _ - * ?)") }
            tags = pattern
        }
        guard let source = RepositoryPattern(sourceText) else { throw SyncRuleError("'\(sourceText.prefix(200))' is not a repository pattern") }
        guard OCINames.isValidRepository(destination) else { throw SyncRuleError("'\(destination.prefix(200))' is not a repository name") }
        self.source = source
        self.sourceText = sourceText
        self.tags = tags
        self.destination = destination
    }

    /// Whether the source names repositories by pattern (the source's catalog is read).
    public var isPattern: Bool { sourceText.contains("*") }

    /// Where repository `name` of the source goes.
    public func destination(of name: String) -> String { isPattern ? destination + "/" + name : destination }

    /// Whether tag `tag` is copied.
    public func copies(_ tag: String) -> Bool { tags?.matches(tag) ?? true }

    public var description: String { sourceText + (tags.map { ":\($0)" } ?? "") + " -> " + destination }
}

/// A rule that cannot be used.
public struct SyncRuleError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let description: String
    init(_ description: String) { self.description = description }
}

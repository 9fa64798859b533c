/// Which tags each repository keeps: the retention file (docs/gc.md, "Retention"), one rule per
/// line, `PATTERN CONDITION…`:
///
/// ```
/// # repositories   a tag is kept when any condition holds
/// team/**          keep-newest=10 keep-recent=30d keep-tags=v*,latest
/// hub/**           keep-recent=14d
/// scratch/*        keep-newest=0
/// ```
///
/// PATTERN is a repository pattern as in the access file (`*` within one component, `**` across).
/// The first rule whose pattern matches a repository is its rule; a repository no rule matches
/// keeps every tag. Conditions:
/// - `keep-newest=N`: the N tags pushed last;
/// - `keep-recent=DURATION`: tags pushed or pulled within it (`30d`, `12h`);
/// - `keep-tags=GLOB,…`: tags matching one of the globs (`*` any characters, `?` one).
///
/// A rule needs at least one condition (`keep-newest=0` says "keep nothing" on purpose).
public struct RetentionPolicy: Sendable, Equatable {
    /// One line of the file.
    public struct Rule: Sendable, Equatable {
        /// The repositories it applies to.
        public var pattern: RepositoryPattern
        /// How many of the newest tags are kept, if that is a condition.
        public var keepNewest: Int?
        /// How recently pushed or pulled a kept tag must be, if that is a condition.
        public var keepRecent: Duration?
        /// Tags kept whatever their age.
        public var keepTags: [TagPattern]
        /// Its line in the file, for reports.
        public var line: Int
    }

    /// A line that cannot be used, with its number.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "retention file line \(line): \(reason)" }
    }

    /// The rules, in the file's order.
    public var rules: [Rule]

    /// The longest file read.
    public static let maximumBytes = 1 << 20

    /// Parses a retention file; `#` starts a comment.
    public init(parsing text: String) throws(ParseError) {
        guard text.utf8.count <= Self.maximumBytes else { throw ParseError(line: 0, reason: "the file is over \(Self.maximumBytes) bytes") }
        var rules: [Rule] = []
        for (index, raw) in text.configurationLines.enumerated() {
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = content.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard let first = words.first else { continue }
            rules.append(try Self.rule(pattern: first, conditions: words.dropFirst(), line: index + 1))
        }
        self.rules = rules
    }

    /// The rule of `repository`: the first whose pattern matches it.
    public func rule(for repository: String) -> Rule? {
        rules.first { $0.pattern.matches(repository) }
    }

    private static func rule(pattern text: Substring, conditions: ArraySlice<Substring>, line: Int) throws(ParseError) -> Rule {
        guard let pattern = RepositoryPattern(String(text)) else {
            throw ParseError(line: line, reason: "'\(text.prefix(100))' is not a repository pattern")
        }
        var rule = Rule(pattern: pattern, keepNewest: nil, keepRecent: nil, keepTags: [], line: line)
        for condition in conditions {
            let parts = condition.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[1].isEmpty else {
                throw ParseError(line: line, reason: "'\(condition.prefix(100))' is not NAME=VALUE")
            }
            switch parts[0] {
            case "keep-newest":
                guard rule.keepNewest == nil, let count = Int(parts[1]), (0...1_000_000).contains(count) else {
                    throw ParseError(line: line, reason: "keep-newest takes a count from 0 to 1000000, once")
                }
                rule.keepNewest = count
            case "keep-recent":
                // A unit is required: a bare `30` would be seconds, and remove nearly everything.
                guard rule.keepRecent == nil, parts[1].last.map({ !$0.isNumber }) ?? false, let duration = DurationText.parse(String(parts[1])) else {
                    throw ParseError(line: line, reason: "keep-recent takes a duration with its unit (30d, 12h, 90m), once")
                }
                rule.keepRecent = duration
            case "keep-tags":
                for glob in parts[1].split(separator: ",") {
                    guard let tag = TagPattern(String(glob)) else {
                        throw ParseError(line: line, reason: "'\(glob.prefix(100))' is not a tag pattern (letters, digits, . _ - * ?)")
                    }
                    rule.keepTags.append(tag)
                }
            default:
                throw ParseError(line: line, reason: "unknown condition '\(parts[0].prefix(50))' (keep-newest, keep-recent, keep-tags)")
            }
        }
        guard rule.keepNewest != nil || rule.keepRecent != nil || !rule.keepTags.isEmpty else {
            throw ParseError(line: line, reason: "a rule needs a condition (keep-newest=0 keeps nothing, on purpose)")
        }
        return rule
    }
}

/// A tag glob: `*` matches any run of characters, `?` one; everything else itself.
public struct TagPattern: Sendable, Equatable, CustomStringConvertible {
    private let bytes: [UInt8]
    public let description: String

    /// Parses a glob; nil when it is empty, over 128 characters, or has characters no tag has.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= 128,
            text.utf8.allSatisfy({ byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "._-*?".utf8.contains(byte)
            })
        else { return nil }
        bytes = Array(text.utf8)
        description = text
    }

    /// Whether `tag` matches: a pass over the tag that backs up only to the last `*` (no
    /// exponential backtracking, whatever the pattern).
    public func matches(_ tag: String) -> Bool {
        let name = Array(tag.utf8)
        var p = 0, t = 0
        var star: Int?, resume = 0
        while t < name.count {
            if p < bytes.count, bytes[p] == UInt8(ascii: "*") {
                star = p
                p += 1
                resume = t
            } else if p < bytes.count, bytes[p] == UInt8(ascii: "?") || bytes[p] == name[t] {
                p += 1
                t += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < bytes.count, bytes[p] == UInt8(ascii: "*") { p += 1 }
        return p == bytes.count
    }
}

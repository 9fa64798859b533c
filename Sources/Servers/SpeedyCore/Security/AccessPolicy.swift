/// What a registry client may do to a repository.
public enum RegistryAction: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case pull
    case push
    case delete

    public static func < (a: RegistryAction, b: RegistryAction) -> Bool { a.rawValue < b.rawValue }

    /// Parses `pull,push` or `*` (all); nil on an unknown action.
    package static func parseList(_ text: Substring) -> Set<RegistryAction>? {
        var actions: Set<RegistryAction> = []
        for word in text.split(separator: ",", omittingEmptySubsequences: true) {
            if word == "*" {
                actions.formUnion(allCases)
            } else if let action = RegistryAction(rawValue: String(word)) {
                actions.insert(action)
            } else {
                return nil
            }
        }
        return actions
    }
}

/// Who gets which actions on which repositories: the access file, one rule per line,
/// `WHO PATTERN ACTIONS`:
///
/// ```
/// # who       repositories   actions
/// admin       **             pull,push,delete
/// *           team/*         pull,push
/// anonymous   public/**      pull
/// ```
///
/// WHO is a user name, `*` (any logged-in user) or `anonymous` (everyone, logged in or not).
/// PATTERN is a repository name where `*` matches within one path component and `**` across
/// components. ACTIONS is a comma list of `pull`, `push`, `delete`, or `*`. Rights add up over
/// every matching line; nothing matches, nothing is allowed.
public struct AccessPolicy: Sendable, Equatable {
    package struct Rule: Sendable, Equatable {
        package var who: String
        package var pattern: RepositoryPattern
        package var actions: Set<RegistryAction>

        package init(who: String, pattern: RepositoryPattern, actions: Set<RegistryAction>) {
            self.who = who
            self.pattern = pattern
            self.actions = actions
        }
    }

    package var rules: [Rule]

    /// A policy line that cannot be used, with its line number.
    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let line: Int
        public let reason: String
        public var description: String { "access file line \(line): \(reason)" }
    }

    /// Everyone may do everything: a registry without logins (the default of `speedy up`).
    public static let openToAll = AccessPolicy(rules: [Rule(who: "anonymous", pattern: RepositoryPattern("**")!, actions: Set(RegistryAction.allCases))])

    /// Logged-in users may do everything, anonymous nothing: htpasswd without an access file.
    public static let usersOnly = AccessPolicy(rules: [Rule(who: "*", pattern: RepositoryPattern("**")!, actions: Set(RegistryAction.allCases))])

    package init(rules: [Rule]) { self.rules = rules }

    /// Parses an access file's text.
    public init(parsing text: String) throws(ParseError) {
        var rules: [Rule] = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if words.isEmpty { continue }
            guard words.count == 3 else { throw ParseError(line: index + 1, reason: "expected WHO PATTERN ACTIONS, got \(words.count) words") }
            guard let pattern = RepositoryPattern(String(words[1])) else {
                throw ParseError(line: index + 1, reason: "'\(words[1])' is not a repository pattern")
            }
            guard let actions = RegistryAction.parseList(words[2]), !actions.isEmpty else {
                throw ParseError(line: index + 1, reason: "actions must be pull, push, delete or *, comma separated; got '\(words[2])'")
            }
            rules.append(Rule(who: String(words[0]), pattern: pattern, actions: actions))
        }
        self.rules = rules
    }

    /// The actions `user` (nil: anonymous) has on `repository`.
    public func actions(for user: String?, on repository: String) -> Set<RegistryAction> {
        var granted: Set<RegistryAction> = []
        for rule in rules where applies(rule.who, to: user) && rule.pattern.matches(repository) {
            granted.formUnion(rule.actions)
        }
        return granted
    }

    /// Whether some rule lets `user` (nil: anonymous) pull anything at all; when none does, a
    /// listing has nothing to show and need read no name.
    public func pullsAnything(_ user: String?) -> Bool {
        rules.contains { applies($0.who, to: user) && $0.actions.contains(.pull) }
    }

    private func applies(_ who: String, to user: String?) -> Bool {
        switch who {
        case "anonymous": true
        case "*": user != nil
        default: who == user
        }
    }
}

/// A repository name pattern: `*` matches within a path component, `**` across them.
public struct RepositoryPattern: Sendable, Equatable {
    package enum Piece: Equatable {
        case literal(String)
        case segment
        case any
    }

    package let pieces: [Piece]

    /// Parses a pattern; nil if it is empty or has characters no repository name has.
    public init?(_ text: String) {
        guard !text.isEmpty, text.count <= 255,
            text.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "._-/*".contains($0)) })
        else { return nil }
        var pieces: [Piece] = []
        var literal = ""
        var index = text.startIndex
        while index < text.endIndex {
            if text[index] == "*" {
                if !literal.isEmpty { pieces.append(.literal(literal)) }
                literal = ""
                let next = text.index(after: index)
                if next < text.endIndex, text[next] == "*" {
                    pieces.append(.any)
                    index = text.index(after: next)
                } else {
                    pieces.append(.segment)
                    index = next
                }
            } else {
                literal.append(text[index])
                index = text.index(after: index)
            }
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        // Matching backtracks per wildcard: a handful is all a rule needs, and bounds the work.
        guard pieces.filter({ $0 == .segment || $0 == .any }).count <= 8 else { return nil }
        self.pieces = pieces
    }

    /// Whether `name` matches.
    public func matches(_ name: String) -> Bool { Self.match(pieces[...], Array(name.utf8)[...]) }

    private static func match(_ pieces: ArraySlice<Piece>, _ name: ArraySlice<UInt8>) -> Bool {
        guard let first = pieces.first else { return name.isEmpty }
        let rest = pieces.dropFirst()
        switch first {
        case .literal(let text):
            let bytes = Array(text.utf8)
            guard name.starts(with: bytes) else { return false }
            return match(rest, name.dropFirst(bytes.count))
        case .segment, .any:
            // Try every split point, shortest first; `*` may not cross a '/'.
            var end = name.startIndex
            while true {
                if match(rest, name[end...]) { return true }
                guard end < name.endIndex, first == .any || name[end] != UInt8(ascii: "/") else { return false }
                end += 1
            }
        }
    }
}

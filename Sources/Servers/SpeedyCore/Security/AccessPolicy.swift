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
        for (index, raw) in text.configurationLines.enumerated() {
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
///
/// Matched in time linear in the name for each piece of the pattern (a set of positions in the
/// pattern, advanced a byte at a time), not by backtracking: a fuzzer found that a pattern such as
/// `**/***a**/*a***a**/` took minutes against a long repository name when every wildcard tried
/// every split point, and the name comes from the request.
public struct RepositoryPattern: Sendable, Equatable {
    package enum Piece: Equatable {
        case literal(String)
        case segment
        case any
    }

    package let pieces: [Piece]
    /// The pattern a byte at a time: each literal byte, `*` and `**`.
    private let tokens: [Token]

    private enum Token: Equatable {
        case byte(UInt8)
        case segment
        case any

        var isWildcard: Bool { self == .segment || self == .any }
    }

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
        // A handful of wildcards is all a rule needs.
        guard pieces.filter({ $0 == .segment || $0 == .any }).count <= 8 else { return nil }
        self.pieces = pieces
        tokens = pieces.flatMap { piece -> [Token] in
            switch piece {
            case .literal(let text): text.utf8.map(Token.byte)
            case .segment: [.segment]
            case .any: [.any]
            }
        }
    }

    public static func == (a: RepositoryPattern, b: RepositoryPattern) -> Bool { a.pieces == b.pieces }

    /// Whether `name` matches: O(pattern length × name length).
    public func matches(_ name: String) -> Bool {
        // reached[i]: the first i tokens can match the bytes read so far.
        var reached = [Bool](repeating: false, count: tokens.count + 1)
        var next = reached
        reached[0] = true
        skipWildcards(&reached)
        for byte in name.utf8 {
            for i in next.indices { next[i] = false }
            var any = false
            for i in tokens.indices where reached[i] {
                switch tokens[i] {
                case .byte(let expected) where expected == byte: next[i + 1] = true
                case .segment where byte != UInt8(ascii: "/"), .any: next[i] = true
                default: continue
                }
                any = true
            }
            guard any else { return false }
            skipWildcards(&next)
            swap(&reached, &next)
        }
        return reached[tokens.count]
    }

    /// A wildcard may match nothing: a reached position before one reaches the position after it.
    private func skipWildcards(_ reached: inout [Bool]) {
        for i in tokens.indices where reached[i] && tokens[i].isWildcard { reached[i + 1] = true }
    }
}

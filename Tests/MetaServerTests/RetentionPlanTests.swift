import Foundation
import SpeedyCore
import SpeedyTestSupport
import Testing

/// The retention file's parser and what a rule decides for a repository's tags.
@Suite("Retention rules")
struct RetentionPlanTests {
    static let day: Int64 = 86_400_000
    static let now: Int64 = 1_000 * day

    func digest(_ seed: String) -> Digest { Digest.of(Array(seed.utf8)) }

    func tag(_ name: String, pushedDaysAgo: Int64, pulledDaysAgo: Int64? = nil, digest seed: String? = nil) -> TagDetail {
        TagDetail(
            tag: name, digest: digest(seed ?? name), pushedMs: Self.now - pushedDaysAgo * Self.day,
            pulledMs: pulledDaysAgo.map { Self.now - $0 * Self.day } ?? 0)
    }

    func rule(_ line: String) throws -> RetentionPolicy.Rule {
        try #require(try RetentionPolicy(parsing: line).rules.first)
    }

    @Test func theFileParsesAndTheFirstMatchingRuleApplies() throws {
        let policy = try RetentionPolicy(
            parsing: """
                # repositories   conditions
                team/app         keep-newest=3 keep-tags=v*,latest
                team/**          keep-recent=30d   # everything else of the team
                scratch/*        keep-newest=0
                """)
        #expect(policy.rules.count == 3)
        #expect(policy.rule(for: "team/app")?.line == 2)
        #expect(policy.rule(for: "team/app")?.keepNewest == 3)
        #expect(policy.rule(for: "team/app")?.keepTags.map(\.description) == ["v*", "latest"])
        #expect(policy.rule(for: "team/tools/cli")?.keepRecent == .seconds(30 * 86_400))
        #expect(policy.rule(for: "scratch/x")?.keepNewest == 0)
        #expect(policy.rule(for: "scratch/x/y") == nil)
        #expect(policy.rule(for: "other") == nil)
        for (text, line) in [
            ("team/** keep-recent=1d\nBAD keep-newest=1\n", 2), ("a\n", 1), ("a keep-newest=-1\n", 1), ("a keep-newest=1 keep-newest=2\n", 1),
            ("a keep-recent=soon\n", 1), ("a keep-recent=30\n", 1), ("a keep-tags=v/1\n", 1), ("a keep-forever=1\n", 1), ("\n\na keep-newest\n", 3),
        ] {
            #expect(throws: RetentionPolicy.ParseError.self, "\(text)") { try RetentionPolicy(parsing: text) }
            do {
                _ = try RetentionPolicy(parsing: text)
            } catch {
                #expect(error.line == line, "\(text.debugDescription): \(error)")
            }
        }
    }

    @Test func aFileWithCRLFLineEndsReadsLineByLine() throws {
        let policy = try RetentionPolicy(parsing: "# rules\r\nteam/app keep-newest=3\r\nteam/** keep-recent=30d\r\n")
        #expect(policy.rules.count == 2)
        #expect(policy.rule(for: "team/app")?.line == 2)
        #expect(policy.rule(for: "team/other")?.line == 3)
    }

    @Test func tagGlobsMatchInOnePass() {
        let cases: [(String, String, Bool)] = [
            ("v*", "v1.2.3", true), ("v*", "1.2", false), ("*-rc?", "1.0-rc1", true), ("*-rc?", "1.0-rc10", false), ("latest", "latest", true),
            ("*", "", true), ("a*b*c", "aXbYc", true), ("a*b*c", "aXbY", false), ("?", "", false), ("*a*a*a*a*b", String(repeating: "a", count: 128), false),
        ]
        for (pattern, tag, expected) in cases {
            #expect(TagPattern(pattern)!.matches(tag) == expected, "\(pattern) ~ \(tag)")
        }
        #expect(TagPattern("") == nil)
        #expect(TagPattern("v/1") == nil)
        // What a regular expression says, for random short globs and tags.
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<3000 {
            let glob = String((0..<Int.random(in: 1...6, using: &generator)).map { _ in "ab*?".randomElement(using: &generator)! })
            let tag = String((0..<Int.random(in: 0...8, using: &generator)).map { _ in "ab".randomElement(using: &generator)! })
            let regex = "^" + glob.replacingOccurrences(of: "*", with: ".*").replacingOccurrences(of: "?", with: ".") + "$"
            #expect(TagPattern(glob)!.matches(tag) == (tag.range(of: regex, options: .regularExpression) != nil), "\(glob) ~ \(tag)")
        }
    }

    @Test func aTagIsKeptWhenAnyConditionHolds() throws {
        let tags = [
            tag("old", pushedDaysAgo: 90), tag("pulled", pushedDaysAgo: 80, pulledDaysAgo: 2), tag("v1.0", pushedDaysAgo: 70),
            tag("mid", pushedDaysAgo: 40), tag("new1", pushedDaysAgo: 3), tag("new2", pushedDaysAgo: 2), tag("recent", pushedDaysAgo: 10),
        ]
        let verdicts = RetentionPlan.decide(tags, rule: try rule("team/** keep-newest=2 keep-recent=14d keep-tags=v*"), nowMs: Self.now)
        let kept = Dictionary(uniqueKeysWithValues: verdicts.map { ($0.tag.tag, $0) })
        #expect(verdicts.map(\.tag.tag) == tags.map(\.tag), "one verdict per tag, in order")
        #expect(kept["new1"]!.keep && kept["new1"]!.reason == "among the newest 2")
        #expect(kept["new2"]!.keep)
        #expect(kept["recent"]!.keep && kept["recent"]!.reason == "pushed within 14d")
        #expect(kept["pulled"]!.keep && kept["pulled"]!.reason == "pulled within 14d")
        #expect(kept["v1.0"]!.keep && kept["v1.0"]!.reason == "matches v*")
        #expect(!kept["old"]!.keep)
        #expect(kept["old"]!.reason == "not among the newest 2; pushed 90d ago, never pulled; matches none of v*")
        #expect(!kept["mid"]!.keep)
        // keep-newest=0 keeps nothing; ties in push time go by name.
        #expect(RetentionPlan.decide(tags, rule: try rule("x keep-newest=0"), nowMs: Self.now).allSatisfy { !$0.keep })
        let tied = [tag("b", pushedDaysAgo: 1), tag("a", pushedDaysAgo: 1), tag("c", pushedDaysAgo: 1)]
        #expect(RetentionPlan.decide(tied, rule: try rule("x keep-newest=2"), nowMs: Self.now).filter(\.keep).map(\.tag.tag) == ["b", "a"])
    }

    @Test func referrerSchemaTagsGoWithTheirSubjectsLastTag() throws {
        let kept = tag("v2", pushedDaysAgo: 1, digest: "kept")
        let dropped = tag("v1", pushedDaysAgo: 100, digest: "dropped")
        let signature = { (seed: String, suffix: String) in
            self.tag("sha256-" + self.digest(seed).hex + suffix, pushedDaysAgo: 100, digest: "sig-" + seed + suffix)
        }
        let tags = [kept, dropped, signature("kept", ".sig"), signature("dropped", ".sig"), signature("untagged", ".att"), signature("kept", "")]
        let verdicts = RetentionPlan.decide(tags, rule: try rule("x keep-newest=1"), nowMs: Self.now)
        #expect(verdicts.map(\.keep) == [true, false, true, false, true, true])
        #expect(verdicts[3].reason == "its subject \(digest("dropped")) loses its last tag")
        #expect(verdicts[4].reason == "its subject \(digest("untagged")) has no tag here")
        // Signature tags do not count among the newest.
        #expect(RetentionPlan.subject(ofSchemaTag: "sha256-" + digest("kept").hex + ".sig") == digest("kept"))
        #expect(RetentionPlan.subject(ofSchemaTag: "sha256-short.sig") == nil)
    }
}

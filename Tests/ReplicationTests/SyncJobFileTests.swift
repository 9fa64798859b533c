import Replication
import SpeedyCore
import Testing

@Suite("Sync rules and the sync file")
struct SyncJobFileTests {
    @Test func aRuleNamesItsRepositoriesTagsAndDestination() throws {
        let one = try SyncRule(parsing: "team/app -> backup/app")
        #expect(!one.isPattern)
        #expect(one.destination(of: "team/app") == "backup/app")
        #expect(one.copies("anything"))

        let pattern = try SyncRule(parsing: "  team/*:v* ->  mirror ")
        #expect(pattern.isPattern)
        #expect(pattern.source.matches("team/app") && !pattern.source.matches("other/app"))
        #expect(pattern.destination(of: "team/app") == "mirror/team/app")
        #expect(pattern.copies("v1.2") && !pattern.copies("latest"))
        #expect(pattern.description == "team/*:v* -> mirror")
    }

    @Test(arguments: ["team/app", "team/app -> ", "team/app -> Bad/Name", "a -> b -> c", "team/app:v[1] -> x", " -> x"])
    func aRuleThatIsNotOneIsRefused(_ text: String) {
        #expect(throws: SyncRuleError.self) { try SyncRule(parsing: text) }
    }

    @Test func jobsAreReadWithTheirEndsAndRules() throws {
        let jobs = try SyncJobFile.parse(
            """
            # a comment line
            sync hub-mirror every=1h delete   # trailing comment
            from https://registry.example:5000 credentials=/etc/speedy/login ca=/etc/speedy/ca.pem
            to http://127.0.0.1:6788
            rule team/*:v* -> mirror
            rule base/alpine -> base/alpine

            sync backup every=30m
            \tto https://backup.example credentials=/etc/speedy/backup-login\r
            from http://127.0.0.1:6788
            rule mirror/** -> site-a
            """)
        #expect(jobs.count == 2)
        let first = jobs[0]
        #expect(first.name == "hub-mirror" && first.every == .seconds(3600) && first.deleteMissing)
        #expect(first.source == SyncEndpoint(url: "https://registry.example:5000", credentialsFile: "/etc/speedy/login", caFile: "/etc/speedy/ca.pem"))
        #expect(first.destination == SyncEndpoint(url: "http://127.0.0.1:6788"))
        #expect(first.rules.map(\.description) == ["team/*:v* -> mirror", "base/alpine -> base/alpine"])
        let second = jobs[1]
        #expect(second.name == "backup" && second.every == .seconds(1800) && !second.deleteMissing)
        #expect(second.destination.credentialsFile == "/etc/speedy/backup-login")
        #expect(second.rules.count == 1)
    }

    @Test func aFileWithNoJobIsValid() throws {
        #expect(try SyncJobFile.parse("").isEmpty)
        #expect(try SyncJobFile.parse("# nothing yet\n\n").isEmpty)
    }

    /// Each mistake is named with its line.
    @Test(arguments: [
        ("from http://a\n", "line 1: 'from' before any"),
        ("sync x every=1h\nfrom http://a\nto http://b\n", "line 1: job x has no `rule` line"),
        ("sync x every=1h\nfrom http://a\nrule a -> b\nsync y every=1h\n", "line 1: job x has no `to URL` line"),
        ("sync x every=1h\nto http://b\nrule a -> b\n", "line 1: job x has no `from URL` line"),
        ("sync x delete\nfrom http://a\nto http://b\nrule a -> b\n", "line 1: job x has no every="),
        ("sync x\n", "line 1: expected `sync NAME every=DURATION"),
        ("sync x every=30\n", "line 1: 'every=30' is not every=DURATION"),
        ("sync x every=500ms\n", "line 1: every= must be at least 1s"),
        ("sync X every=1h\n", "line 1: expected `sync NAME"),
        ("sync x every=1h\nfrom ftp://a\n", "line 2: expected `from http(s)://"),
        ("sync x every=1h\nfrom http://a password=hunter2\n", "line 2: 'password=hunter2' is not credentials=FILE"),
        ("sync x every=1h\nfrom http://a\nfrom http://b\n", "line 3: a second `from`"),
        ("sync x every=1h\nfrom http://a\nto http://b\nrule nope\n", "line 4: rule: 'nope' is not"),
        ("sync x every=1h\nfrom http://a\nto http://b\nrule a -> b\nsync x every=1h\n", "line 5: a second job named x"),
        ("sync x every=1h\nschedule daily\n", "line 2: 'schedule' is not sync, from, to or rule"),
        ("sync x every=1h every=2h\n", "line 1: 'every=2h' is not every=DURATION (once"),
        ("sync x every=1h\nfrom https://bot:s3cret@registry.example\n", "line 2: a login in the URL is refused"),
        ("sync x every=1h\nfrom https://registry.example/?token=1\n", "line 2: expected `from http(s)://"),
        ("sync x every=1h\nfrom https://\n", "line 2: expected `from http(s)://"),
    ])
    func mistakesAreRefusedWithTheirLine(_ text: String, _ message: String) {
        do {
            _ = try SyncJobFile.parse(text)
            Issue.record("parsed: \(text)")
        } catch {
            #expect(error.description.hasPrefix(message), "\(error.description)")
        }
    }

    @Test func jobNamesAreShortAndPlain() {
        #expect(SyncJob.isValidName("hub-mirror.2_a"))
        #expect(!SyncJob.isValidName(""))
        #expect(!SyncJob.isValidName("-x"))
        #expect(!SyncJob.isValidName("Hub"))
        #expect(!SyncJob.isValidName(String(repeating: "a", count: 65)))
        #expect(!SyncJob.isValidName("a b"))
    }

    @Test func anEndpointWithAnUnreadableLoginIsAClearError() {
        let endpoint = SyncEndpoint(url: "https://registry.example", credentialsFile: "/nonexistent/login")
        #expect(throws: SyncJobError("cannot read the credentials file /nonexistent/login")) { try endpoint.makeClient() }
    }
}

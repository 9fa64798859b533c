import Foundation
@testable import ImageServer
import JWTKit
import Logging
import Testing

@Suite("Registry logins and permissions")
struct RegistryAuthTests {
    @Test func accessRulesAddUpPerUserAndPattern() throws {
        let policy = try AccessPolicy(
            parsing: """
                # who       repositories   actions
                admin       **             *
                *           team/*         pull,push
                anonymous   public/**      pull
                bob         team/app       delete   # and a comment
                """)
        #expect(policy.actions(for: "admin", on: "any/thing/deep") == [.pull, .push, .delete])
        #expect(policy.actions(for: "alice", on: "team/app") == [.pull, .push])
        #expect(policy.actions(for: "alice", on: "team/app/sub").isEmpty, "* stays within one component")
        #expect(policy.actions(for: "bob", on: "team/app") == [.pull, .push, .delete])
        #expect(policy.actions(for: nil, on: "team/app").isEmpty)
        #expect(policy.actions(for: nil, on: "public/a/b") == [.pull])
        #expect(policy.actions(for: "alice", on: "public/x") == [.pull], "anonymous rights are everyone's")
        #expect(policy.actions(for: nil, on: "publicity").isEmpty)
    }

    @Test func badAccessFilesNameTheLine() {
        for (text, line) in [("admin ** pull\nbob team\n", 2), ("x ** fly\n", 1), ("x BAD pull\n", 1), ("\n\nx a b c d\n", 3)] {
            #expect {
                try AccessPolicy(parsing: text)
            } throws: { ($0 as? AccessPolicy.ParseError)?.line == line }
        }
    }

    @Test func patternsMatchLikeGlobs() {
        let cases: [(String, String, Bool)] = [
            ("**", "a", true), ("**", "a/b/c", true), ("*", "a/b", false), ("a/*", "a/b", true), ("a/*", "a/b/c", false),
            ("a/**", "a/b/c", true), ("a/**/z", "a/b/c/z", true), ("*-dev", "app-dev", true), ("*-dev", "app-prod", false),
            ("lib/*/x", "lib//x", true), ("exact", "exact", true), ("exact", "exactly", false),
        ]
        for (pattern, name, expected) in cases {
            #expect(RepositoryPattern(pattern)!.matches(name) == expected, "\(pattern) ~ \(name)")
        }
        #expect(RepositoryPattern("") == nil)
        #expect(RepositoryPattern("UPPER") == nil)
        #expect(RepositoryPattern("a b") == nil)
    }

    @Test func userFilesTakeBcryptOnly() async throws {
        let line = UserFile.line(user: "alice", password: "s3cret-pass", cost: 4)
        let users = try UserFile(parsing: "# users\n\(line)\n")
        #expect(users.users == ["alice"])
        let checker = PasswordChecker(users: users)
        #expect(await checker.check(user: "alice", password: "s3cret-pass"))
        #expect(await checker.check(user: "alice", password: "s3cret-pass"), "remembered")
        #expect(!(await checker.check(user: "alice", password: "wrong")))
        #expect(!(await checker.check(user: "mallory", password: "s3cret-pass")))
        // A swapped file forgets what was remembered.
        checker.replace(try UserFile(parsing: UserFile.line(user: "alice", password: "new-pass", cost: 4)))
        #expect(!(await checker.check(user: "alice", password: "s3cret-pass")))
        #expect(await checker.check(user: "alice", password: "new-pass"))
        // MD5 and SHA-1 htpasswd lines are refused, with the line.
        #expect { try UserFile(parsing: "ok:\(line.split(separator: ":")[1])\nbob:$apr1$abc$def\n") } throws: {
            ($0 as? UserFile.ParseError)?.line == 2
        }
        #expect(throws: UserFile.ParseError.self) { try UserFile(parsing: "bob:{SHA}abc=\n") }
    }

    @Test func tokensCheckOutOnlyWhenOursUnexpiredAndForThisService() async throws {
        let key = Array("a-key-of-at-least-sixteen".utf8)
        let issuer = await TokenIssuer(key: key, service: "speedy", lifetime: .seconds(300))
        let access = [RegistryClaims.Access(type: "repository", name: "team/app", actions: ["pull"])]
        let (token, _) = try await issuer.issue(user: "alice", access: access)
        let claims = try #require(await issuer.check(token))
        #expect(claims.sub?.value == "alice")
        #expect(claims.actions(on: "team/app") == [.pull])
        #expect(claims.actions(on: "team/other").isEmpty)

        // Expired: issued long enough ago.
        let (old, _) = try await issuer.issue(user: "alice", access: access, now: Date().addingTimeInterval(-3600))
        #expect(await issuer.check(old) == nil)
        // Signed with another key, or for another service.
        let other = await TokenIssuer(key: Array("another-key-sixteen-chars".utf8), service: "speedy", lifetime: .seconds(300))
        #expect(await issuer.check(try await other.issue(user: "alice", access: access).token) == nil)
        let elsewhere = await TokenIssuer(key: key, service: "elsewhere", lifetime: .seconds(300))
        #expect(await issuer.check(try await elsewhere.issue(user: "alice", access: access).token) == nil)
        // A token with its payload changed (more actions) fails its signature.
        let parts = token.split(separator: ".")
        var payload = try JSONSerialization.jsonObject(with: Data(base64URL: String(parts[1]))!) as! [String: Any]
        payload["access"] = [["type": "repository", "name": "team/app", "actions": ["pull", "push", "delete"]]]
        let forged = parts[0] + "." + (try JSONSerialization.data(withJSONObject: payload)).base64URL + "." + parts[2]
        #expect(await issuer.check(String(forged)) == nil)
        for junk in ["", "a.b.c", String(repeating: "x", count: 20_000), "..."] { #expect(await issuer.check(junk) == nil) }
    }

    @Test func basicCredentialsParseWithoutTrapping() {
        let header = "Basic " + Data("alice:pa:ss".utf8).base64EncodedString()
        #expect(RegistryAuth.basicCredentials(header).map { [$0.0, $0.1] } == ["alice", "pa:ss"])
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = RegistryAuth.basicCredentials("Basic " + String(decoding: bytes, as: UTF8.self))
            _ = RegistryAuth.basicCredentials("Basic " + Data(bytes).base64EncodedString())
        }
    }

    @Test func rateLimitsRefillOverTime() {
        let limiter = RateLimiter(rate: 10, burst: 20)
        let start = ContinuousClock.now
        for _ in 0..<20 { #expect(limiter.take("a", now: start) == nil) }
        #expect(limiter.take("a", now: start) == 1)
        #expect(limiter.take("b", now: start) == nil, "another client has its own bucket")
        #expect(limiter.take("a", now: start + .milliseconds(150)) == nil, "1.5 tokens came back")
        #expect(limiter.take("a", now: start + .milliseconds(150)) != nil)
    }
}

extension Data {
    init?(base64URL text: String) {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        self.init(base64Encoded: base64)
    }

    var base64URL: String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

import Crypto
import Foundation
import HTTPTypes
@testable import ImageServer
import JWTKit
import Logging
import RegistryTokens
import SpeedyCore
import SpeedyTestSupport
import Synchronization
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
        // What a regular expression says, for short random patterns and names.
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<3000 {
            let pattern = String((0..<Int.random(in: 1...8, using: &generator)).map { _ in "ab/**".randomElement(using: &generator)! })
            let name = String((0..<Int.random(in: 0...10, using: &generator)).map { _ in "ab/".randomElement(using: &generator)! })
            guard let compiled = RepositoryPattern(pattern) else { continue }
            let regex = "^" + pattern.replacingOccurrences(of: "**", with: "\u{1}").replacingOccurrences(of: "*", with: "[^/]*")
                .replacingOccurrences(of: "\u{1}", with: ".*") + "$"
            let expected = name.range(of: regex, options: .regularExpression) != nil
            #expect(compiled.matches(name) == expected, "\(pattern) ~ \(name)")
        }
    }

    /// Found by libFuzzer: with backtracking, each wildcard tried every split point, and this
    /// pattern took minutes against a long name. Now it is a pass over the name.
    @Test(.timeLimit(.minutes(1))) func manyWildcardsDoNotBacktrack() {
        let pattern = RepositoryPattern("**/***a**/*a***a**/")!
        #expect(pattern.matches(String(repeating: "a/", count: 127)))
        #expect(!pattern.matches(String(repeating: "b/", count: 127)))
        #expect(!RepositoryPattern("*a*a*a*a*a*a*a*b")!.matches(String(repeating: "a", count: 255)))
        #expect(RepositoryPattern("a b") == nil)
    }

    /// Files saved with CRLF line ends (an editor on Windows) read as with LF.
    @Test func filesWithCRLFLineEndsReadLineByLine() throws {
        let alice = UserFile.line(user: "alice", password: "s3cret-pass", cost: 4)
        let bob = UserFile.line(user: "bob", password: "other-pass", cost: 4)
        #expect(try UserFile(parsing: "# users\r\n\(alice)\r\n\(bob)\r\n").users == ["alice", "bob"])
        let policy = try AccessPolicy(parsing: "# who repositories actions\r\nalice team/* pull,push\r\nbob team/* pull\r\n")
        #expect(policy.actions(for: "alice", on: "team/app") == [.pull, .push])
        #expect(policy.actions(for: "bob", on: "team/app") == [.pull])
        do {
            _ = try AccessPolicy(parsing: "alice team/* pull\r\nbob team/*\r\n")
            Issue.record("a line of two words parsed")
        } catch {
            #expect(error.line == 2)
        }
    }

    @Test func userFilesTakeBcryptOnly() async throws {
        let line = UserFile.line(user: "alice", password: "s3cret-pass", cost: 4)
        let users = try UserFile(parsing: "# users\n\(line)\n")
        #expect(users.users == ["alice"])
        let checker = PasswordChecker(users: users)
        #expect(try await checker.check(user: "alice", password: "s3cret-pass"))
        #expect(try await checker.check(user: "alice", password: "s3cret-pass"), "remembered")
        #expect(try await !checker.check(user: "alice", password: "wrong"))
        #expect(try await !checker.check(user: "mallory", password: "s3cret-pass"))
        // A swapped file forgets what was remembered.
        checker.replace(try UserFile(parsing: UserFile.line(user: "alice", password: "new-pass", cost: 4)))
        #expect(try await !checker.check(user: "alice", password: "s3cret-pass"))
        #expect(try await checker.check(user: "alice", password: "new-pass"))
        // MD5 and SHA-1 htpasswd lines are refused, with the line.
        #expect { try UserFile(parsing: "ok:\(line.split(separator: ":")[1])\nbob:$apr1$abc$def\n") } throws: {
            ($0 as? UserFile.ParseError)?.line == 2
        }
        #expect(throws: UserFile.ParseError.self) { try UserFile(parsing: "bob:{SHA}abc=\n") }
        // 60 characters but not 60 bytes of bcrypt's alphabet (found by Tests/Fuzz/run).
        #expect(throws: UserFile.ParseError.self) { try UserFile(parsing: "bob:$2y$10$" + String(repeating: "é", count: 53) + "\n") }
        #expect(throws: UserFile.ParseError.self) { try UserFile(parsing: "bob:$2y$1x$" + String(repeating: "a", count: 53) + "\n") }
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

    /// Issue 20, finding 9: bcrypt reads 72 bytes and stops at a NUL, so `pw\0anything` and
    /// anything past the 72nd byte used to be accepted. Such passwords never match now.
    @Test func passwordsBcryptWouldCutShortNeverMatch() async throws {
        let long = String(repeating: "p", count: 71) + "!"
        #expect(long.utf8.count == 72)
        let users = try UserFile(
            parsing: UserFile.line(user: "long", password: long, cost: 4) + "\n" + UserFile.line(user: "short", password: "pw", cost: 4) + "\n")
        let checker = PasswordChecker(users: users)
        #expect(try await checker.check(user: "long", password: long))
        for extra in ["x", String(repeating: "y", count: 100)] {
            #expect(try await !checker.check(user: "long", password: long + extra), "72 bytes and \(extra.count) more")
        }
        #expect(try await !checker.check(user: "short", password: "pw\u{0}x"))
        #expect(try await !checker.check(user: "short", password: "pw\u{0}"))
        #expect(try await checker.check(user: "short", password: "pw"))
        #expect(UserFile.passwordProblem(long) == nil)
        #expect(UserFile.passwordProblem(long + "x")?.contains("73 bytes") == true)
        #expect(UserFile.passwordProblem("pw\u{0}x")?.contains("NUL") == true)
        // Bytes, not characters: 24 three-byte characters are 72 bytes, 25 are too many.
        #expect(UserFile.passwordProblem(String(repeating: "€", count: 24)) == nil)
        #expect(UserFile.passwordProblem(String(repeating: "€", count: 25)) != nil)
    }

    /// Issue 20, finding 7: with every bcrypt check taken by a flood of wrong passwords, a right
    /// password used to get "wrong password" (401). Now it gets in or is told to come back
    /// (``LoginDeferred``), and a user who logged in lately gets in at once, without a bcrypt.
    @Test func aFloodOfWrongPasswordsNeverRefusesARightOne() async throws {
        // Cost 10: each check takes long enough for the flood to hold every slot, and the flood
        // is short, since it keeps both cores busy and other suites run beside it.
        let users = try UserFile(
            parsing: [UserFile.line(user: "alice", password: "alice-pass", cost: 10), UserFile.line(user: "bob", password: "bob-pass", cost: 4)]
                .joined(separator: "\n"))
        let checker = PasswordChecker(users: users)
        #expect(try await checker.check(user: "bob", password: "bob-pass", from: "10.0.0.2"))

        // The flood: wrong passwords for alice from addresses of their own (so no address limit
        // stops them), for 1.5 s and until the logins below are done: on a loaded machine the
        // checks may take longer than the clock says, and the logins must happen during it.
        let end = ContinuousClock.now + .milliseconds(1500)
        let loginsDone = Flag()
        let flood = Task {
            await withTaskGroup(of: (wrong: Int, busy: Int, limited: Int).self) { group in
                for worker in 0..<24 {
                    group.addTask {
                        var counts = (wrong: 0, busy: 0, limited: 0)
                        var attempt = 0
                        while ContinuousClock.now < end || !loginsDone.isSet {
                            attempt += 1
                            do {
                                let address = "10.1.\(worker).\(attempt)"
                                if try await !checker.check(user: "alice", password: "guess-\(attempt)", from: address) { counts.wrong += 1 }
                            } catch LoginDeferred.busy {
                                counts.busy += 1
                                try? await Task.sleep(for: .milliseconds(5))
                            } catch {
                                counts.limited += 1
                            }
                        }
                        return counts
                    }
                }
                return await group.reduce(into: (wrong: 0, busy: 0, limited: 0)) { $0 = ($0.wrong + $1.wrong, $0.busy + $1.busy, $0.limited + $1.limited) }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        var outcomes: [String] = []
        for _ in 0..<5 {
            // A first login of alice, from an address of her own.
            do {
                outcomes.append(try await checker.check(user: "alice", password: "alice-pass", from: "10.0.0.3") ? "in" : "wrong")
            } catch {
                outcomes.append("\(error)")
            }
            // bob logged in before: in at once, whatever the flood does.
            let started = ContinuousClock.now
            #expect(try await checker.check(user: "bob", password: "bob-pass", from: "10.0.0.2"))
            #expect(ContinuousClock.now - started < .milliseconds(200), "no bcrypt for a remembered password")
            try await Task.sleep(for: .milliseconds(100))
        }
        loginsDone.set()
        let counts = await flood.value
        #expect(counts.busy > 0, "the flood kept every check busy: \(counts)")
        #expect(counts.limited == 0, "fresh addresses are not limited: \(counts)")
        #expect(!outcomes.isEmpty && !outcomes.contains("wrong"), "\(outcomes)")
        #expect(outcomes.allSatisfy { $0 == "in" || $0 == "busy" }, "\(outcomes)")
        #expect(try await checker.check(user: "alice", password: "alice-pass", from: "10.0.0.3"), "in once the flood is over")
    }

    /// Issue 20, finding 7: after the (user, address) pair's failures, that pair is told to come
    /// back (429), and the right password from another address still gets in.
    @Test func failedLoginsAreLimitedPerUserAndAddress() async throws {
        let users = try UserFile(parsing: UserFile.line(user: "alice", password: "alice-pass", cost: 4))
        let checker = PasswordChecker(users: users)
        for attempt in 0..<10 { #expect(try await !checker.check(user: "alice", password: "wrong-\(attempt)", from: "192.0.2.1")) }
        await #expect(throws: LoginDeferred.self) { try await checker.check(user: "alice", password: "wrong-10", from: "192.0.2.1") }
        do {
            _ = try await checker.check(user: "alice", password: "alice-pass", from: "192.0.2.1")
            Issue.record("a right password from the guessing address is not checked before the pair's time is up")
        } catch {
            guard case .limited(let retryAfter) = error else { Issue.record("\(error)"); return }
            #expect((1...60).contains(retryAfter))
        }
        #expect(try await checker.check(user: "alice", password: "alice-pass", from: "192.0.2.2"))
        let error = OCIError.loginDeferred(.limited(retryAfter: 42))
        #expect(error.status == .tooManyRequests && error.code == .tooManyRequests && error.headers[.retryAfter] == "42")
        let busy = OCIError.loginDeferred(.busy)
        #expect(busy.status == .serviceUnavailable && busy.headers[.retryAfter] == "1")
    }

    /// The limiter on its own, with a clock of its own: per (user, address), per address, and a
    /// per-user slowdown that spares addresses which have not been failing; each lifts within
    /// one refill, and the tables stay bounded however many addresses and names come.
    @Test func theLoginLimiterSlowsGuessersNotUsers() {
        var limiter = LoginLimiter()
        let t0 = ContinuousClock.now
        let (a, b) = ("198.51.100.1", "198.51.100.2")
        for _ in 0..<10 { limiter.failed(user: "alice", address: a, now: t0) }
        #expect(limiter.pairWait(user: "alice", address: a, now: t0) == 60)
        #expect(limiter.pairWait(user: "alice", address: b, now: t0) == nil, "another address")
        #expect(limiter.pairWait(user: "bob", address: a, now: t0) == nil, "another user")
        #expect(limiter.pairWait(user: "alice", address: a, now: t0 + .seconds(45)) == 15)
        #expect(limiter.pairWait(user: "alice", address: a, now: t0 + .seconds(60)) == nil, "one more try a minute")
        limiter.succeeded(user: "alice", address: a)
        #expect(limiter.pairWait(user: "alice", address: a, now: t0) == nil, "a right password forgives the pair")

        // Per address: 30 failures across users, then one every 10 s; b is not touched.
        var other = LoginLimiter()
        for user in 0..<30 { other.failed(user: "user\(user)", address: a, now: t0) }
        #expect(other.wait(user: "someone", address: a, now: t0) == 10)
        #expect(other.wait(user: "someone", address: b, now: t0) == nil)
        #expect(other.wait(user: "someone", address: a, now: t0 + .seconds(10)) == nil)

        // Per user: 20 failures for carol from 20 addresses slow down those addresses only.
        var slow = LoginLimiter()
        for n in 0..<20 { slow.failed(user: "carol", address: "203.0.113.\(n)", now: t0) }
        #expect(slow.wait(user: "carol", address: "203.0.113.1", now: t0) == 5)
        #expect(slow.wait(user: "carol", address: b, now: t0) == nil, "carol from an address that never failed")
        #expect(slow.wait(user: "dave", address: "203.0.113.1", now: t0) == nil)
        #expect(slow.wait(user: "carol", address: "203.0.113.1", now: t0 + .seconds(5)) == nil, "a slowdown, not a lockout")

        // Bounded: 5,000 addresses and names through tables of 100.
        var bounded = LoginLimiter(.init(capacity: 100))
        for n in 0..<5_000 { bounded.failed(user: "u\(n)", address: "a\(n)", now: t0 + .milliseconds(n)) }
        let sizes = bounded.sizes
        #expect(sizes.pairs <= 100 && sizes.addresses <= 100 && sizes.users <= 100, "\(sizes)")
    }

    /// The token key rotates by SIGHUP: with the old and the new key in the file, tokens signed with
    /// either pass and new ones are signed with the first; with the new alone, old tokens fail.
    @Test func theTokenKeyRotatesWithoutRefusingATokenInItsWindow() async throws {
        let temporary = try TemporaryDirectory("token-keys")
        defer { temporary.remove() }
        let users = temporary.path + "/htpasswd", keys = temporary.path + "/token-key"
        try (UserFile.line(user: "alice", password: "pw-alice", cost: 4) + "\n").write(toFile: users, atomically: true, encoding: .utf8)
        let old = String(repeating: "o", count: 40), new = String(repeating: "n", count: 40)
        try (old + "\n").write(toFile: keys, atomically: true, encoding: .utf8)
        let auth = try await RegistryAuth.load(RegistryAuthConfiguration(htpasswdPath: users, tokenKeyPath: keys), logger: .init(label: "test"))
        let access: [RegistryClaims.Access] = [.init(type: "repository", name: "app", actions: ["pull"])]
        let before = try await auth.issuer.issue(user: "alice", access: access).token

        // Step 1: both keys, the old still signing. Step 2: both, the new signing.
        try "\(old)\n\(new)\n".write(toFile: keys, atomically: true, encoding: .utf8)
        await auth.reload()
        #expect(try await auth.identify("Bearer " + before) != nil)
        try "\(new)\n\(old)\n".write(toFile: keys, atomically: true, encoding: .utf8)
        await auth.reload()
        let during = try await auth.issuer.issue(user: "alice", access: access).token
        #expect(try await auth.identify("Bearer " + before) != nil, "a token of the old key, inside the window")
        #expect(try await auth.identify("Bearer " + during) != nil)
        #expect(await TokenIssuer(key: Array(new.utf8), service: "speedy", lifetime: .seconds(60)).check(during) != nil, "signed with the new key")

        // Step 3: the new key alone; a broken file keeps what was read.
        try "\(new)\n".write(toFile: keys, atomically: true, encoding: .utf8)
        await auth.reload()
        #expect(try await auth.identify("Bearer " + before) == nil, "the old key's tokens end with the window")
        #expect(try await auth.identify("Bearer " + during) != nil)
        try "short\n".write(toFile: keys, atomically: true, encoding: .utf8)
        await auth.reload()
        #expect(try await auth.identify("Bearer " + during) != nil, "a key file that cannot be used changes nothing")
    }

    /// Issue 20, finding 8: tokens signed with our key but with `nbf` in the future, or a header
    /// naming another algorithm, used to be accepted (jwt-kit checks the signature with our key
    /// whatever `alg` says). Every registered claim is checked now, and the algorithm.
    @Test func forgedTokensWithOurKeyAreRefused() async throws {
        let key = Array("a-key-of-at-least-thirty-two-characters".utf8)
        let issuer = await TokenIssuer(key: key, service: "speedy", lifetime: .seconds(300))
        let now = Date()
        func claims(
            iss: String = "speedy", sub: String? = "alice", aud: String = "speedy", exp: TimeInterval = 300, nbf: TimeInterval? = nil, iat: TimeInterval = 0
        ) -> RegistryClaims {
            RegistryClaims(
                iss: .init(value: iss), sub: sub.map { .init(value: $0) }, aud: .init(value: aud), exp: .init(value: now + exp),
                nbf: nbf.map { .init(value: now + $0) }, iat: .init(value: now + iat),
                access: [.init(type: "repository", name: "team/app", actions: ["pull", "push"])])
        }
        // Our own signer, as a forger holding the key would use it.
        let good = try await issuer.keys[0].sign(claims())
        #expect(await issuer.check(good)?.sub?.value == "alice", "a well-formed token checks out")
        #expect(await issuer.check(try await issuer.keys[0].sign(claims(nbf: -10))) != nil, "nbf in the past is fine")

        var refused: [String: String] = [:]
        refused["nbf in an hour"] = try await issuer.keys[0].sign(claims(nbf: 3600))
        refused["iat in an hour"] = try await issuer.keys[0].sign(claims(exp: 7200, iat: 3600))
        refused["iat after exp"] = try await issuer.keys[0].sign(claims(exp: 10, iat: 20))
        refused["another issuer"] = try await issuer.keys[0].sign(claims(iss: "elsewhere"))
        refused["another audience"] = try await issuer.keys[0].sign(claims(aud: "elsewhere"))
        refused["an empty subject"] = try await issuer.keys[0].sign(claims(sub: ""))
        refused["a subject with a space"] = try await issuer.keys[0].sign(claims(sub: "alice bob"))
        // The header names another algorithm; the HS256 signature is right for it.
        for alg in ["none", "HS384", "HS512", "RS256", "hs256", ""] {
            refused["alg \(alg) signed HS256"] = try await issuer.keys[0].sign(claims(), header: ["alg": .string(alg)])
        }
        refused["a key id"] = try await issuer.keys[0].sign(claims(), header: ["kid": "other"])
        refused["a crit list"] = try await issuer.keys[0].sign(claims(), header: ["crit": .array([.string("exp")])])
        refused["typ other"] = try await issuer.keys[0].sign(claims(), header: ["typ": "at+jwt"])
        // HS384 with the same key, signed by HS384 for real (jwt-kit wants longer HS384 keys).
        let parts = good.split(separator: ".")
        let hs384Input = Data(#"{"alg":"HS384","typ":"JWT"}"#.utf8).base64URL + "." + parts[1]
        let hs384 = HMAC<SHA384>.authenticationCode(for: Array(hs384Input.utf8), using: SymmetricKey(data: SHA256.hash(data: key)))
        refused["HS384 with our key"] = hs384Input + "." + Data(hs384).base64URL
        // alg none with no signature at all.
        let noneHeader = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64URL
        refused["alg none unsigned"] = noneHeader + "." + parts[1] + "."
        for (what, token) in refused {
            #expect(await issuer.check(token) == nil, "\(what)")
        }
    }

    @Test func basicCredentialsParseWithoutTrapping() {
        let header = "Basic " + Data("alice:pa:ss".utf8).base64EncodedString()
        #expect(BasicCredentials(header: header).map { [$0.user, $0.password] } == ["alice", "pa:ss"])
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<5_000 {
            let bytes = (0..<Int.random(in: 0...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = BasicCredentials(header: "Basic " + String(decoding: bytes, as: UTF8.self))
            _ = BasicCredentials(header: "Basic " + Data(bytes).base64EncodedString())
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

/// A flag one task sets and others read.
private final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing

extension ProcessSuites.RegistryAuthTests {
    /// Issue 20, finding 7, replayed: a flood of wrong passwords from one address used to keep
    /// every bcrypt check busy, and a first login with the right password then got 401 as a
    /// wrong one would. Now it gets in or gets 429/503 with Retry-After; a user who logged in
    /// before gets in at once; the flooding address is held at 429 once over its limit while
    /// another address logs in.
    @Test func aFloodOfWrongPasswordsDoesNotLockOutLogins() async throws {
        let cluster = ClusterHarness()
        defer { cluster.shutdown() }
        let users = cluster.root + "/htpasswd"
        var lines: [String] = []
        for user in ["bob", "carol", "dave"] { lines.append(try await htpasswdLine(user: user, password: "\(user)-pass")) }
        try (lines.joined(separator: "\n") + "\n").write(toFile: users, atomically: true, encoding: .utf8)
        // No request rate limit: the failed-login limits are what is tested.
        let registry = try await cluster.startRegistry(imageserverArguments: ["--htpasswd", users, "--rate-limit", "0"])
        let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: .plain)
        #expect(try await client.send(.GET, "/v2/", headers: [basic("bob", "bob-pass")]).status == 200)

        // The flood: wrong passwords for ever new names (each a bcrypt against the decoy hash),
        // 48 at once (more than the checks that run at once), on connections of its own.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let flooder = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: .plain, http: http)
        let flood = Task {
            await withTaskGroup(of: [Int].self) { group in
                for worker in 0..<48 {
                    group.addTask {
                        var statuses: [Int] = []
                        for attempt in 0..<200 {
                            let login = basic("mallory-\(worker)-\(attempt)", "guess")
                            guard let reply = try? await flooder.send(.GET, "/v2/", headers: [login]) else { continue }
                            statuses.append(reply.status)
                            if reply.status == 429 { break }
                            if reply.status == 503 { try? await Task.sleep(for: .milliseconds(20)) }
                        }
                        return statuses
                    }
                }
                return await group.reduce(into: []) { $0 += $1 }
            }
        }
        // During the flood (caught here, so the flood's client is always shut down): carol's
        // first login and bob's, who logged in before.
        var during: (carol: (status: Int, headers: HTTPHeaders, body: ByteBuffer), bob: Int)?
        do {
            try await Task.sleep(for: .milliseconds(150))
            let carol = try await client.send(.GET, "/v2/", headers: [basic("carol", "carol-pass")])
            during = (carol, try await client.send(.GET, "/v2/", headers: [basic("bob", "bob-pass")]).status)
        } catch {
            Issue.record(error)
        }
        let statuses = await flood.value
        try? await http.shutdown()
        let (carol, bob) = try #require(during)
        // carol is in, or told to come back; never "wrong". bob is in, flood or not.
        #expect([200, 429, 503].contains(carol.status), "carol got \(carol.status): \(String(buffer: carol.body))")
        if carol.status != 200 { #expect(carol.headers.first(name: "Retry-After").flatMap(Int.init) != nil) }
        #expect(bob == 200)
        #expect(Set(statuses).isSubset(of: [401, 429, 503]), "\(Set(statuses))")
        #expect(statuses.contains(503), "the flood kept every check busy")
        #expect(statuses.contains(429), "the flooding address reached its limit")

        // The flooding address is over its limit: a login never seen before waits, with Retry-After…
        let dave = try await client.send(.GET, "/v2/", headers: [basic("dave", "dave-pass")])
        #expect(dave.status == 429)
        #expect(errorCode(dave.body) == "TOOMANYREQUESTS")
        #expect(dave.headers.first(name: "Retry-After").flatMap(Int.init).map { (1...60).contains($0) } == true)
        let token = try await client.send(.GET, "/token?service=speedy", headers: [basic("dave", "dave-pass")])
        #expect(token.status == 429 && token.headers.first(name: "Retry-After") != nil)
        #expect(try await client.send(.GET, "/v2/", headers: [basic("bob", "bob-pass")]).status == 200, "a remembered login still gets in")
        // …while dave from another address (127.0.0.2, to the same loopback server) gets in.
        let elsewhere = try await ClusterHarness.run(
            "/usr/bin/curl",
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.2", "-u", "dave:dave-pass", registry.registryURL + "/v2/"])
        #expect(elsewhere.output == "200", "\(elsewhere.output)")
        #expect(!cluster.log("imageserver").contains("dave-pass"))
    }

    /// Issue 20, finding 9, replayed: bcrypt stops at a NUL and after 72 bytes, so `pw\0x` and
    /// a 72-byte password with more after it used to log in. `speedy htpasswd` refuses such
    /// passwords (exit 2), and the registry never matches them.
    @Test func passwordsBcryptWouldCutShortAreRefused() async throws {
        let speedy = "'\(ClusterHarness.binDirectory)/speedy' htpasswd --cost 4"
        let long = String(repeating: "p", count: 71) + "!"
        let tooLong = try await ClusterHarness.run("/bin/sh", ["-c", "printf '%s\\n' '\(long)x' | \(speedy) alice"])
        #expect(tooLong.status == 2)
        #expect(tooLong.output.contains("73 bytes") && !tooLong.output.contains("$2"), "\(tooLong.output)")
        let nul = try await ClusterHarness.run("/bin/sh", ["-c", "printf 'pw\\000x\\n' | \(speedy) alice"])
        #expect(nul.status == 2)
        #expect(nul.output.contains("NUL"), "\(nul.output)")

        let cluster = ClusterHarness()
        defer { cluster.shutdown() }
        let users = cluster.root + "/htpasswd"
        try (try await htpasswdLine(user: "long", password: long) + "\n" + (try await htpasswdLine(user: "short", password: "pw")) + "\n")
            .write(toFile: users, atomically: true, encoding: .utf8)
        let registry = try await cluster.startRegistry(imageserverArguments: ["--htpasswd", users])
        let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
        #expect(try await client.send(.GET, "/v2/", headers: [basic("long", long)]).status == 200)
        for password in [long + "x", long + String(repeating: "y", count: 100)] {
            let reply = try await client.send(.GET, "/v2/", headers: [basic("long", password)])
            #expect(reply.status == 401 && errorCode(reply.body) == "UNAUTHORIZED", "\(password.utf8.count) bytes")
        }
        #expect(try await client.send(.GET, "/v2/", headers: [basic("short", "pw\u{0}x")]).status == 401)
        #expect(try await token(client, scope: "repository:team/app:pull", login: ("short", "pw\u{0}x")).status == 401)
        #expect(try await client.send(.GET, "/v2/", headers: [basic("short", "pw")]).status == 200)
    }

    /// Issue 20, finding 8, replayed: tokens signed with the cluster's own key (as any holder of
    /// `--token-key-file` can) but with `nbf` in the future, or a header naming another algorithm,
    /// used to be accepted. Each is 401 UNAUTHORIZED now; the same forgery done right still works.
    @Test func forgedTokensAreRefused() async throws {
        let cluster = ClusterHarness()
        defer { cluster.shutdown() }
        let users = cluster.root + "/htpasswd"
        try (try await htpasswdLine(user: "alice", password: "alice-pass") + "\n").write(toFile: users, atomically: true, encoding: .utf8)
        let keyText = String(repeating: "k", count: 40)
        try keyText.write(toFile: cluster.root + "/token-key", atomically: true, encoding: .utf8)
        let registry = try await cluster.startRegistry(imageserverArguments: ["--htpasswd", users, "--token-key-file", cluster.root + "/token-key"])
        let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
        // The imageserver signs with HMAC under the SHA-256 of the key file's text.
        let hmacKey = Digest.of(Array(keyText.utf8)).hex
        let now = Int(Date().timeIntervalSince1970)

        func forge(alg: String, digest: String? = "sha256", extra: String = "") async throws -> String {
            let header = base64URL(#"{"alg":"\#(alg)","typ":"JWT"}"#)
            let access = #"[{"type":"repository","name":"team/app","actions":["pull"]}]"#
            let payload = base64URL(#"{"iss":"speedy","sub":"alice","aud":"speedy","exp":\#(now + 300),"iat":\#(now)\#(extra),"access":\#(access)}"#)
            let input = header + "." + payload
            guard let digest else { return input + "." }
            let mac = try await ClusterHarness.run(
                "/bin/sh", ["-c", "printf '%s' '\(input)' | openssl dgst -\(digest) -mac HMAC -macopt hexkey:\(hmacKey) -binary | base64 -w0"])
            let signature = mac.output.trimmingCharacters(in: .whitespacesAndNewlines)
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            return input + "." + signature
        }
        func status(_ token: String) async throws -> (Int, String?) {
            let reply = try await client.send(.GET, "/v2/team/app/tags/list", headers: [("Authorization", "Bearer \(token)")])
            return (reply.status, errorCode(reply.body))
        }

        // The forgery done right: a token like those the registry issues (the repository is
        // unknown, so 404, but past the credential check).
        #expect(try await status(try await forge(alg: "HS256")).0 == 404)
        #expect(try await status(try await forge(alg: "HS256", extra: #","nbf":\#(now - 10)"#)).0 == 404)
        let refused = [
            "nbf in an hour": try await forge(alg: "HS256", extra: #","nbf":\#(now + 3600)"#),
            "alg none, HS256 signature": try await forge(alg: "none"),
            "alg none, unsigned": try await forge(alg: "none", digest: nil),
            "alg HS384, HS256 signature": try await forge(alg: "HS384"),
            "alg HS384, HS384 signature": try await forge(alg: "HS384", digest: "sha384"),
        ]
        for (what, token) in refused {
            let (code, error) = try await status(token)
            #expect(code == 401 && error == "UNAUTHORIZED", "\(what): \(code) \(error ?? "")")
        }
    }

    /// Base64url without padding, as JWTs use it.
    func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
}

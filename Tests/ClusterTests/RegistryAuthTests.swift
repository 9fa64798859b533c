import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Logins, permissions, tokens and TLS on the registry, with skopeo, podman and raw HTTP.
    @Suite("Registry logins and TLS", .serialized)
    struct RegistryAuthTests {
        /// An htpasswd line made by `speedy htpasswd`, the password piped in.
        func htpasswdLine(user: String, password: String) async throws -> String {
            let made = try await ClusterHarness.run(
                "/bin/sh", ["-c", "printf '%s\\n' '\(password)' | '\(ClusterHarness.binDirectory)/speedy' htpasswd --cost 4 \(user)"])
            #expect(made.status == 0, "\(made.output)")
            return made.output.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        func basic(_ user: String, _ password: String) -> (String, String) {
            ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
        }

        /// A token from the registry's token endpoint.
        func token(_ client: ServiceClient, scope: String, login: (String, String)? = nil) async throws -> (status: Int, token: String?) {
            let reply = try await client.send(.GET, "/token?service=speedy&scope=\(scope)", headers: login.map { [basic($0.0, $0.1)] } ?? [])
            let json = try? JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView)) as? [String: Any]
            return (reply.status, json?["token"] as? String)
        }

        /// The token flow by hand: challenges with scopes, tokens per user, DENIED for a right the
        /// user lacks, Basic sent directly, a filtered catalog, an expired token refused.
        @Test func tokensGrantWhatTheAccessFileSays() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let users = cluster.root + "/htpasswd"
            try (try await htpasswdLine(user: "alice", password: "alice-pass") + "\n" + (try await htpasswdLine(user: "reader", password: "reader-pass")) + "\n")
                .write(toFile: users, atomically: true, encoding: .utf8)
            try "alice ** pull,push,delete\nreader team/* pull\nanonymous public/** pull\n".write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            try String(repeating: "k", count: 40).write(toFile: cluster.root + "/token-key", atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(imageserverArguments: [
                "--htpasswd", users, "--access", cluster.root + "/access", "--token-key-file", cluster.root + "/token-key", "--token-lifetime", "10",
            ])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)

            let probe = try await client.send(.GET, "/v2/")
            #expect(probe.status == 401)
            #expect(probe.headers.first(name: "WWW-Authenticate") == "Bearer realm=\"\(registry.registryURL)/token\",service=\"speedy\"")
            let anonymousPush = try await client.send(.POST, "/v2/team/app/blobs/uploads/")
            #expect(anonymousPush.status == 401)
            #expect(errorCode(anonymousPush.body) == "UNAUTHORIZED")
            #expect(anonymousPush.headers.first(name: "WWW-Authenticate")?.hasSuffix("scope=\"repository:team/app:pull,push\"") == true)

            // alice pushes with a token for the scope she asked.
            let (status, aliceToken) = try await token(client, scope: "repository:team/app:pull,push", login: ("alice", "alice-pass"))
            #expect(status == 200)
            let bearer = ("Authorization", "Bearer \(try #require(aliceToken))")
            let data = Array("layer bytes".utf8)
            let digest = Digest.of(data)
            let pushed = try await client.send(.POST, "/v2/team/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data), headers: [bearer])
            #expect(pushed.status == 201)
            #expect(try await client.send(.GET, "/v2/", headers: [bearer]).status == 200)
            // The token covers team/app only.
            #expect(try await client.send(.GET, "/v2/team/other/tags/list", headers: [bearer]).status == 401)

            // reader's token carries pull only: the push is DENIED (no new token would help).
            let readerToken = try #require(try await token(client, scope: "repository:team/app:pull,push", login: ("reader", "reader-pass")).token)
            let denied = try await client.send(
                .POST, "/v2/team/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data), headers: [("Authorization", "Bearer \(readerToken)")])
            #expect(denied.status == 403)
            #expect(errorCode(denied.body) == "DENIED")
            #expect(try await client.send(.GET, "/v2/team/app/blobs/\(digest)", headers: [("Authorization", "Bearer \(readerToken)")]).status == 200)

            // Basic credentials sent directly; a wrong password anywhere is 401.
            #expect(try await client.send(.GET, "/v2/team/app/blobs/\(digest)", headers: [basic("reader", "reader-pass")]).status == 200)
            #expect(try await client.send(.DELETE, "/v2/team/app/blobs/\(digest)", headers: [basic("reader", "reader-pass")]).status == 403)
            #expect(try await client.send(.GET, "/v2/team/app/blobs/\(digest)", headers: [basic("reader", "wrong")]).status == 401)
            #expect(try await token(client, scope: "repository:team/app:pull", login: ("alice", "wrong")).status == 401)
            #expect(try await client.send(.GET, "/v2/", headers: [("Authorization", "Bearer not.a.token")]).status == 401)

            // The catalog lists what the caller may pull.
            let publicData = Array("public".utf8)
            _ = try await client.send(
                .POST, "/v2/public/base/blobs/uploads/?digest=\(Digest.of(publicData))", body: ByteBuffer(bytes: publicData), headers: [basic("alice", "alice-pass")])
            func catalog(_ headers: [(String, String)]) async throws -> [String] {
                let reply = try await client.send(.GET, "/v2/_catalog", headers: headers)
                let json = try JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView)) as? [String: Any]
                return json?["repositories"] as? [String] ?? []
            }
            #expect(try await catalog([]) == ["public/base"])
            #expect(try await catalog([basic("alice", "alice-pass")]) == ["public/base", "team/app"])
            // An anonymous token pulls public repositories only.
            let anonymousToken = try #require(try await token(client, scope: "repository:public/base:pull repository:team/app:pull").token)
            let anonymousPull = try await client.send(.GET, "/v2/team/app/blobs/\(digest)", headers: [("Authorization", "Bearer \(anonymousToken)")])
            #expect(anonymousPull.status == 401)

            // No password, token or secret in the log.
            let log = cluster.log("imageserver")
            for secret in ["alice-pass", "reader-pass", aliceToken!, readerToken] { #expect(!log.contains(secret)) }
            #expect(log.contains("denied push on team/app to reader"))

            // Tokens expire (this registry issues them for 10 s).
            try await Task.sleep(for: .seconds(11))
            #expect(try await client.send(.GET, "/v2/team/app/blobs/\(digest)", headers: [bearer]).status == 401)
        }

        /// Issue 20: the catalog's `Link` named the last repository it had scanned, hidden or not,
        /// so paging with `n=1` showed anonymous callers names they may not pull. Now every page,
        /// its headers and whether a next page exists come from visible names only.
        @Test func catalogPagesNeverShowAHiddenName() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let users = cluster.root + "/htpasswd"
            try (try await htpasswdLine(user: "admin", password: "admin-pass") + "\n" + (try await htpasswdLine(user: "limited", password: "limited-pass")) + "\n")
                .write(toFile: users, atomically: true, encoding: .utf8)
            // b-secret and a run of 25 more hidden names sit between visible ones; limited may
            // push to them but not pull, which is what a listing needs.
            try "admin ** pull,push,delete\nanonymous a pull\nanonymous c pull\nanonymous d pull\nlimited b-secret* push\nlimited e pull\n"
                .write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(imageserverArguments: ["--htpasswd", users, "--access", cluster.root + "/access"])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let hidden = ["b-secret"] + (0..<25).map { String(format: "b-secret-%02d", $0) }
            for name in ["a", "c", "d", "e"] + hidden {
                let data = Array(name.utf8)
                let pushed = try await client.send(
                    .POST, "/v2/\(name)/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data), headers: [basic("admin", "admin-pass")])
                #expect(pushed.status == 201, "\(name): \(pushed.status)")
            }

            /// Every page of the catalog `n` at a time, following the Link headers to the end.
            func walk(n: Int, _ headers: [(String, String)], seesHidden: Bool = false) async throws -> [String] {
                var names: [String] = []
                var next: String? = "/v2/_catalog?n=\(n)"
                var pages = 0
                while let path = next, pages < 50 {
                    pages += 1
                    let reply = try await client.send(.GET, path, headers: headers)
                    #expect(reply.status == 200, "\(path): \(reply.status)")
                    let raw = String(buffer: reply.body) + reply.headers.map { "\($0.name): \($0.value)" }.joined(separator: "\n")
                    #expect(seesHidden || !raw.contains("b-secret"), "\(path) shows a hidden name: \(raw)")
                    let json = try JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView)) as? [String: Any]
                    let page = json?["repositories"] as? [String] ?? []
                    // A next page exists only when a visible name is on it: never an empty one.
                    #expect(!page.isEmpty && page.count <= n, "\(path) gave \(page)")
                    names += page
                    next = reply.headers.first(name: "Link").flatMap { link in
                        link.split(separator: ">").first.map { String($0.dropFirst()) }
                    }
                    if let next { #expect(next.hasSuffix("last=\(page.last ?? "")"), "the Link goes on from the last name shown: \(next)") }
                }
                return names
            }
            for n in [1, 2, 3] {
                #expect(try await walk(n: n, []) == ["a", "c", "d"], "anonymous, n=\(n)")
                #expect(try await walk(n: n, [basic("limited", "limited-pass")]) == ["a", "c", "d", "e"], "limited, n=\(n)")
            }
            // Starting after a hidden name (guessed) tells nothing either.
            let guessed = try await client.send(.GET, "/v2/_catalog?n=1&last=b-secret")
            #expect(String(buffer: guessed.body).contains("\"c\"") && guessed.headers.first(name: "Link")?.contains("last=c") == true)
            // The admin sees them all, each once.
            #expect(try await walk(n: 4, [basic("admin", "admin-pass")], seesHidden: true) == (["a", "c", "d", "e"] + hidden).sorted())
        }

        /// `speedy up --auth --tls`: skopeo and podman log in over HTTPS with verification on;
        /// anonymous, a wrong password, an unknown CA and a pull-only user pushing are each refused
        /// and write nothing; a user added with `speedy htpasswd` works after SIGHUP.
        @Test func speedyUpWithAuthAndTLSServesRealClients() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (data, registryPort, up) = try cluster.startSecureUp()
            // SIGTERM, so `speedy up` stops its children (a SIGKILL would leave them running).
            defer { up.stop() }
            let host = "127.0.0.1:\(registryPort)"
            let ready = await cluster.eventually(within: 40) {
                guard let probe = try? await ClusterHarness.run(
                    "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", data + "/tls/ca.crt", "https://\(host)/v2/"])
                else { return false }
                // The banner (with the password) comes once the registry can take a push.
                return probe.output == "401" && cluster.log("up").contains("Speedy is up")
            }
            #expect(ready, "\(cluster.log("up"))")
            // The registry port takes TLS 1.2 and newer only, as every role's does (issue 20).
            #expect(await !InternalTLSTests.handshakes(port: registryPort, ca: data + "/tls/ca.crt", maximum: .tlsv11))
            #expect(await InternalTLSTests.handshakes(port: registryPort, ca: data + "/tls/ca.crt", minimum: .tlsv12, maximum: .tlsv12))
            let password = try String(contentsOfFile: data + "/admin-password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(try FileManager.default.attributesOfItem(atPath: data + "/admin-password")[.posixPermissions] as? Int == 0o600)
            #expect(cluster.log("up").contains("admin / \(password)"))
            let certs = data + "/tls"
            let layout = try await cluster.makeImage(named: "secure", randomBytes: 2_000_000)
            func skopeo(_ arguments: [String]) async throws -> (status: Int32, output: String) {
                try await ClusterHarness.run("/usr/bin/skopeo", arguments, environment: ["REGISTRY_AUTH_FILE": cluster.root + "/auth.json"])
            }
            func catalogHas(_ name: String) async throws -> Bool {
                let listing = try await ClusterHarness.run(
                    "/usr/bin/curl", ["-s", "--cacert", certs + "/ca.crt", "-u", "admin:\(password)", "https://\(host)/v2/_catalog"])
                return listing.output.contains("\"\(name)\"")
            }

            let push = try await skopeo(["copy", "--dest-cert-dir", certs, "--dest-creds", "admin:\(password)", "oci:\(layout):latest", "docker://\(host)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let anonymous = try await skopeo(["copy", "--dest-cert-dir", certs, "oci:\(layout):latest", "docker://\(host)/anon/app:v1"])
            #expect(anonymous.status != 0)
            #expect(anonymous.output.contains("unauthorized"), "\(anonymous.output)")
            let wrong = try await skopeo(["copy", "--dest-cert-dir", certs, "--dest-creds", "admin:wrong", "oci:\(layout):latest", "docker://\(host)/wrong/app:v1"])
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("invalid username/password"), "\(wrong.output)")
            let unknownCA = try await skopeo(["copy", "--dest-creds", "admin:\(password)", "oci:\(layout):latest", "docker://\(host)/noca/app:v1"])
            #expect(unknownCA.status != 0)
            #expect(unknownCA.output.contains("certificate"), "\(unknownCA.output)")
            for refused in ["anon/app", "wrong/app", "noca/app"] { #expect(try await !catalogHas(refused), "\(refused)") }

            // skopeo login stores the credentials; the pull needs no --creds then.
            let login = try await skopeo(["login", "--cert-dir", certs, "-u", "admin", "-p", password, host])
            #expect(login.status == 0, "\(login.output)")
            let pulled = try await skopeo(["copy", "--src-cert-dir", certs, "docker://\(host)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)")
            let original = try await skopeo(["inspect", "--raw", "oci:\(layout):latest"]).output
            let copy = try await skopeo(["inspect", "--raw", "oci:\(cluster.root)/pulled:v1"]).output
            #expect(Digest.of(Array(original.utf8)) == Digest.of(Array(copy.utf8)))

            if FileManager.default.isExecutableFile(atPath: "/usr/bin/podman") {
                let env = ["REGISTRY_AUTH_FILE": cluster.root + "/podman-auth.json"]
                let good = try await ClusterHarness.run("/usr/bin/podman", ["login", "--cert-dir", certs, "-u", "admin", "-p", password, host], environment: env)
                #expect(good.status == 0, "\(good.output)")
                let bad = try await ClusterHarness.run("/usr/bin/podman", ["login", "--cert-dir", certs, "-u", "admin", "-p", "nope", host], environment: env)
                #expect(bad.status != 0)
                // podman pushes and pulls with its stored login (its own storage, in the test's directory).
                // podman wants a run root under 50 characters.
                let runRoot = "/tmp/spd-podman-" + UUID().uuidString.prefix(8)
                defer { try? FileManager.default.removeItem(atPath: runRoot) }
                let storage = ["--storage-driver", "vfs", "--root", cluster.root + "/podman-root", "--runroot", runRoot]
                let podman = { (arguments: [String]) in try await ClusterHarness.run("/usr/bin/podman", storage + arguments, environment: env) }
                let pulledFirst = try await podman(["pull", "--cert-dir", certs, "\(host)/team/app:v1"])
                #expect(pulledFirst.status == 0, "\(pulledFirst.output)")
                let image = pulledFirst.output.split(separator: "\n").last.map(String.init) ?? "?"
                let pushed = try await podman(["push", "--cert-dir", certs, "\(host)/team/app:v1", "\(host)/podman/app:v1"])
                #expect(pushed.status == 0, "\(pushed.output)")
                _ = try await podman(["rmi", "-a", "-f"])
                let pulledBack = try await podman(["pull", "--cert-dir", certs, "\(host)/podman/app:v1"])
                #expect(pulledBack.status == 0, "\(pulledBack.output)")
                #expect(pulledBack.output.contains(image), "\(pulledBack.output)")
                _ = try await podman(["rmi", "-a", "-f"])
            }

            // A pull-only user, added while the registry runs.
            let line = try await htpasswdLine(user: "reader", password: "reader-pass")
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/htpasswd"))
            handle.seekToEndOfFile()
            handle.write(Data((line + "\n").utf8))
            try handle.close()
            let access = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/access"))
            access.seekToEndOfFile()
            access.write(Data("reader team/** pull\n".utf8))
            try access.close()
            let imageserver = try #require(ClusterHarness.pid(listeningOn: registryPort))
            kill(imageserver, SIGHUP)
            #expect(await cluster.eventually(within: 10) { cluster.log("up").contains("re-read the registry's users (2)") })
            let readerPull = try await skopeo(["inspect", "--cert-dir", certs, "--creds", "reader:reader-pass", "docker://\(host)/team/app:v1"])
            #expect(readerPull.status == 0, "\(readerPull.output)")
            let readerPush = try await skopeo(["copy", "--dest-cert-dir", certs, "--dest-creds", "reader:reader-pass", "oci:\(layout):latest", "docker://\(host)/team/app:v2"])
            #expect(readerPush.status != 0)
            #expect(readerPush.output.contains("denied"), "\(readerPush.output)")
            let tags = try await skopeo(["list-tags", "--cert-dir", certs, "--creds", "admin:\(password)", "docker://\(host)/team/app"])
            #expect(tags.output.contains("v1") && !tags.output.contains("v2"), "\(tags.output)")
        }

        /// A client over its request rate gets 429 with Retry-After, and others are served.
        @Test func aClientOverItsRateGets429() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--rate-limit", "5"])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            var statuses: [Int] = []
            var retryAfter: String?
            for _ in 0..<30 {
                let reply = try await client.send(.GET, "/v2/")
                statuses.append(reply.status)
                if reply.status == 429 {
                    retryAfter = reply.headers.first(name: "Retry-After")
                    #expect(errorCode(reply.body) == "TOOMANYREQUESTS")
                }
            }
            // A burst of 10, less the harness's readiness probes.
            #expect(statuses.filter { $0 == 200 }.count >= 5, "the burst is served: \(statuses)")
            #expect(statuses.contains(429))
            #expect(retryAfter.flatMap(Int.init).map { $0 >= 1 } == true)
            try await Task.sleep(for: .seconds(2))
            #expect(try await client.send(.GET, "/v2/").status == 200, "the bucket refills")
        }
    }
}

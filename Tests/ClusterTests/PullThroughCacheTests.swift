import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// The pull-through cache (issue 26): a registry cluster in front of Debian's `docker-registry`
    /// with htpasswd logins and TLS, pulled through with skopeo.
    @Suite("Pull-through cache", .serialized)
    struct PullThroughCacheTests {
        /// A running `docker-registry` with logins and TLS.
        struct Upstream {
            var port: Int
            var process: Process
            var data: String
            var ca: String
            var login: String
            var hostPort: String { "127.0.0.1:\(port)" }
        }

        static let user = "mirror"
        static let password = "mirror-pass"

        /// Certificates, an htpasswd file and a config for `docker-registry` on a free port; the
        /// registry is started by ``start(_:_:)``.
        func makeUpstream(_ cluster: ClusterHarness) async throws -> Upstream {
            let tls = cluster.root + "/tls"
            let made = try await ClusterHarness.run(ClusterHarness.binDirectory + "/speedy", ["certificates", "--out", tls])
            #expect(made.status == 0, "\(made.output)")
            let htpasswd = cluster.root + "/upstream-htpasswd"
            try (try await RegistryAuthTests().htpasswdLine(user: Self.user, password: Self.password) + "\n")
                .write(toFile: htpasswd, atomically: true, encoding: .utf8)
            let login = cluster.root + "/upstream-login"
            try "\(Self.user):\(Self.password)\n".write(toFile: login, atomically: true, encoding: .utf8)
            let port = ClusterHarness.freePort()
            try """
                version: 0.1
                log: { level: info }
                storage: { filesystem: { rootdirectory: \(cluster.root)/upstream-data }, delete: { enabled: true } }
                auth: { htpasswd: { realm: upstream, path: \(htpasswd) } }
                http: { addr: "127.0.0.1:\(port)", tls: { certificate: \(tls)/private/server.crt, key: \(tls)/private/server.key } }

                """.write(toFile: cluster.root + "/upstream.yml", atomically: true, encoding: .utf8)
            var upstream = Upstream(port: port, process: Process(), data: cluster.root + "/upstream-data", ca: tls + "/ca.crt", login: login)
            upstream.process = try await start(cluster, upstream)
            return upstream
        }

        /// Starts (or starts again) the upstream; returns once it answers.
        func start(_ cluster: ClusterHarness, _ upstream: Upstream) async throws -> Process {
            let process = try cluster.start("upstream", ["serve", cluster.root + "/upstream.yml"], program: "/usr/bin/docker-registry")
            let transport = try ClusterTransport(secret: nil, caFile: upstream.ca)
            let ready = await cluster.eventually(within: 20) {
                // 401: up, asking for the login.
                (try? await ServiceClient(baseURL: "https://\(upstream.hostPort)", transport: transport).send(.GET, "/v2/"))?.status == 401
            }
            guard ready else { throw HarnessError("docker-registry did not come up:\n\(cluster.log("upstream"))") }
            return process
        }

        func stop(_ process: Process) {
            process.terminate()
            process.waitUntilExit()
        }

        /// Pushes the OCI layout `layout` to the upstream as `name:tag`.
        func push(_ layout: String, to upstream: Upstream, as reference: String) async throws {
            let pushed = try await skopeo([
                "copy", "--dest-tls-verify=false", "--dest-creds", "\(Self.user):\(Self.password)", "oci:\(layout):latest",
                "docker://\(upstream.hostPort)/\(reference)",
            ])
            #expect(pushed.status == 0, "\(pushed.output)")
        }

        /// The registry cluster, caching the upstream under `up/`.
        func startCache(_ cluster: ClusterHarness, _ upstream: Upstream, ttl: String = "2s", arguments: [String] = []) async throws
            -> ClusterHarness.Registry
        {
            try await cluster.startRegistry(
                imageserverArguments: [
                    "--upstream", "up=https://\(upstream.hostPort)", "--upstream-credentials", "up=\(upstream.login)", "--upstream-ca",
                    "up=\(upstream.ca)", "--upstream-tag-ttl", ttl,
                ] + arguments)
        }

        /// Runs podman with storage of its own in the test's directory, taking `registry` as an
        /// insecure (plain HTTP) registry, and no logins from the host.
        func podmanRunner(_ cluster: ClusterHarness, registry: String) throws -> @Sendable ([String]) async throws -> (status: Int32, output: String) {
            let conf = cluster.root + "/registries.conf"
            try "[[registry]]\nlocation = \"\(registry)\"\ninsecure = true\n".write(toFile: conf, atomically: true, encoding: .utf8)
            let auth = cluster.root + "/podman-auth.json"
            try "{}\n".write(toFile: auth, atomically: true, encoding: .utf8)
            // The run root under 50 characters, as podman needs.
            let runRoot = "/tmp/spd-podman-" + UUID().uuidString.prefix(8)
            let global = ["--root", cluster.root + "/podman-root", "--runroot", runRoot, "--tmpdir", runRoot + "/libpod", "--storage-driver", "vfs"]
            let environment = ["CONTAINERS_REGISTRIES_CONF": conf, "REGISTRY_AUTH_FILE": auth]
            return { arguments in try await ClusterHarness.run("/usr/bin/podman", global + arguments, environment: environment) }
        }

        func skopeo(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await ClusterHarness.run("/usr/bin/skopeo", arguments)
        }

        /// Pulls `reference` from the cache into a new OCI layout; its path and skopeo's outcome.
        func pull(_ registry: ClusterHarness.Registry, _ reference: String, into path: String) async throws -> (status: Int32, output: String) {
            try await skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.hostPort)/\(reference)", "oci:\(path):pulled"])
        }

        /// Checks that the layout `pulled` holds a whole image (manifest, config, layer) of blobs
        /// that hash to their names, all from the layout `source`.
        func expectImage(_ pulled: String, from source: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let names = try blobs(of: pulled)
            #expect(names.count == 3, "\(names)", sourceLocation: sourceLocation)
            #expect(names.isSubset(of: try blobs(of: source)), sourceLocation: sourceLocation)
        }

        /// The blob digests of an OCI layout, each checked to hash to its name.
        func blobs(of layout: String) throws -> Set<String> {
            let names = try FileManager.default.contentsOfDirectory(atPath: layout + "/blobs/sha256")
            for hex in names {
                let data = try Data(contentsOf: URL(fileURLWithPath: layout + "/blobs/sha256/" + hex))
                #expect(Digest.of([UInt8](data)).hex == hex, "\(hex) does not hash to its name")
            }
            return Set(names)
        }

        /// The upstream's answered requests (status 200) of `method` for paths containing `part`.
        func upstreamRequests(_ cluster: ClusterHarness, _ method: String, containing part: String) -> [String] {
            cluster.log("upstream").split(separator: "\n").compactMap { line -> String? in
                guard let range = line.range(of: "\"\(method) /v2/") else { return nil }
                let rest = line[range.lowerBound...].dropFirst()
                let fields = rest.split(separator: " ")
                guard fields.count > 3, fields[1].contains(part), fields[3] == "200" else { return nil }
                return String(fields[1])
            }
        }

        @Test func pullsComeFromTheUpstreamOnceThenFromTheClusterEvenWhenItIsDown() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            var upstream = try await makeUpstream(cluster)
            let first = try await cluster.makeImage(named: "first", randomBytes: 9 << 20)
            try await push(first, to: upstream, as: "team/app:v1")
            let registry = try await startCache(cluster, upstream)

            // Cold: from the upstream, through the cluster.
            let cold = try await pull(registry, "up/team/app:v1", into: cluster.root + "/cold")
            #expect(cold.status == 0, "\(cold.output)\n\(cluster.log("imageserver"))")
            try expectImage(cluster.root + "/cold", from: first)
            let fetched = upstreamRequests(cluster, "GET", containing: "/blobs/")
            #expect(fetched.count == 2, "config and layer once each: \(fetched)")

            // Warm: nothing more from the upstream.
            let warm = try await pull(registry, "up/team/app:v1", into: cluster.root + "/warm")
            #expect(warm.status == 0, "\(warm.output)")
            try expectImage(cluster.root + "/warm", from: first)
            #expect(upstreamRequests(cluster, "GET", containing: "/blobs/").count == 2)

            // Down: the cached copy, once the tag's TTL is out, with the staleness logged.
            stop(upstream.process)
            try await Task.sleep(for: .milliseconds(2500))
            let offline = try await pull(registry, "up/team/app:v1", into: cluster.root + "/offline")
            #expect(offline.status == 0, "\(offline.output)\n\(cluster.log("imageserver"))")
            try expectImage(cluster.root + "/offline", from: first)
            #expect(cluster.log("imageserver").contains("serving up/team/app:v1 from the cache unchecked"))
            // podman too, by tag, with the upstream down.
            let podman = try podmanRunner(cluster, registry: registry.hostPort)
            let podmanPull = try await podman(["pull", "\(registry.hostPort)/up/team/app:v1"])
            #expect(podmanPull.status == 0, "\(podmanPull.output)\n\(cluster.log("imageserver"))")
            let inspected = try await podman(["image", "inspect", "--format", "{{.Digest}}", "\(registry.hostPort)/up/team/app:v1"])
            let manifest = try await ServiceClient(baseURL: registry.registryURL, transport: .plain)
                .send(.HEAD, "/v2/up/team/app/manifests/v1", headers: [("Accept", "application/vnd.oci.image.manifest.v1+json")])
            #expect(inspected.output.trimmingCharacters(in: .whitespacesAndNewlines) == manifest.headers.first(name: "Docker-Content-Digest"))
            // What was never cached is an error the client can retry, not a hang.
            let missing = try await ServiceClient(baseURL: registry.registryURL, transport: .plain).send(.GET, "/v2/up/team/other/manifests/v1")
            #expect(missing.status == 503, "\(String(buffer: missing.body))")

            // Moved upstream: the new image once the TTL is out.
            upstream.process = try await start(cluster, upstream)
            let second = try await cluster.makeImage(named: "second", randomBytes: 1 << 20)
            try await push(second, to: upstream, as: "team/app:v1")
            try await Task.sleep(for: .milliseconds(2500))
            let moved = try await pull(registry, "up/team/app:v1", into: cluster.root + "/moved")
            #expect(moved.status == 0, "\(moved.output)")
            try expectImage(cluster.root + "/moved", from: second)

            // Pushes go to the upstream, not into the cache.
            let refused = try await skopeo([
                "copy", "--dest-tls-verify=false", "oci:\(first):latest", "docker://\(registry.hostPort)/up/team/app:mine",
            ])
            #expect(refused.status != 0)
            #expect(refused.output.contains("pull-through cache"), "\(refused.output)")
        }

        @Test func twentyColdPullsFetchEachBlobOnce() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let upstream = try await makeUpstream(cluster)
            let image = try await cluster.makeImage(named: "busy", randomBytes: 9 << 20)
            try await push(image, to: upstream, as: "busy:1")
            let registry = try await startCache(cluster, upstream, ttl: "5m")

            let outcomes = try await withThrowingTaskGroup(of: (Int, Int32, String).self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let pulled = try await pull(registry, "up/busy:1", into: cluster.root + "/pull-\(index)")
                        return (index, pulled.status, pulled.output)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for (index, status, output) in outcomes {
                #expect(status == 0, "pull \(index): \(output)")
                if status == 0 { try expectImage(cluster.root + "/pull-\(index)", from: image) }
            }
            let fetched = upstreamRequests(cluster, "GET", containing: "/blobs/")
            #expect(fetched.count == 2, "each blob once: \(fetched)")
            #expect(Set(fetched).count == 2)
            #expect(upstreamRequests(cluster, "GET", containing: "/manifests/").count == 1)
        }

        /// With logins, a blob the cluster stores for another repository is not linked into a
        /// cached one on its digest alone: the upstream must serve it there.
        @Test func aCachedRepositoryGivesNoOneAnotherRepositorysBlob() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let upstream = try await makeUpstream(cluster)
            let public_ = try await cluster.makeImage(named: "public", randomBytes: 1 << 20)
            try await push(public_, to: upstream, as: "pub/app:v1")
            let auth = RegistryAuthTests()
            let users = cluster.root + "/htpasswd"
            try (try await auth.htpasswdLine(user: "alice", password: "alice-pass") + "\n").write(toFile: users, atomically: true, encoding: .utf8)
            try "alice ** pull,push,delete\nanonymous up/** pull\n".write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            try String(repeating: "k", count: 40).write(toFile: cluster.root + "/token-key", atomically: true, encoding: .utf8)
            let registry = try await startCache(
                cluster, upstream, arguments: ["--htpasswd", users, "--access", cluster.root + "/access", "--token-key-file", cluster.root + "/token-key"])
            let secret = try await cluster.makeImage(named: "secret", randomBytes: 1 << 20)
            let pushed = try await skopeo([
                "copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pass", "oci:\(secret):latest", "docker://\(registry.hostPort)/private/app:v1",
            ])
            #expect(pushed.status == 0, "\(pushed.output)")
            let secretLayer = try blobs(of: secret).max { a, b in
                let size = { (hex: String) in (try? FileManager.default.attributesOfItem(atPath: secret + "/blobs/sha256/" + hex)[.size] as? Int) ?? 0 }
                return size(a) < size(b)
            }!

            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let token = try #require(try await auth.token(client, scope: "repository:up/pub/app:pull").token)
            let bearer = [("Authorization", "Bearer \(token)")]
            let stolen = try await client.send(.GET, "/v2/up/pub/app/blobs/sha256:\(secretLayer)", headers: bearer)
            #expect(stolen.status == 404, "\(String(buffer: stolen.body))")
            #expect(errorCode(stolen.body) == "BLOB_UNKNOWN")
            // What the upstream does serve there comes through, to the same anonymous pull.
            let anonymous = try await skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.hostPort)/up/pub/app:v1", "oci:\(cluster.root)/anonymous:v1"])
            #expect(anonymous.status == 0, "\(anonymous.output)\n\(cluster.log("imageserver"))")
            try expectImage(cluster.root + "/anonymous", from: public_)
        }

        @Test func anUpstreamThatSendsOtherBytesGetsNothingStored() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let upstream = try await makeUpstream(cluster)
            let image = try await cluster.makeImage(named: "liar", randomBytes: 1 << 20)
            try await push(image, to: upstream, as: "liar:1")
            let registry = try await startCache(cluster, upstream)

            // The layer's file in the upstream's storage, flipped: same length, other bytes.
            let layer = try FileManager.default.contentsOfDirectory(atPath: image + "/blobs/sha256").max { a, b in
                let size = { (hex: String) in (try? FileManager.default.attributesOfItem(atPath: image + "/blobs/sha256/" + hex)[.size] as? Int) ?? 0 }
                return size(a) < size(b)
            }!
            let stored = upstream.data + "/docker/registry/v2/blobs/sha256/\(layer.prefix(2))/\(layer)/data"
            let original = try Data(contentsOf: URL(fileURLWithPath: stored))
            var flipped = original
            flipped[flipped.count / 2] ^= 0xFF
            try flipped.write(to: URL(fileURLWithPath: stored))

            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let lied = try await client.send(.GET, "/v2/up/liar/blobs/sha256:\(layer)")
            #expect(lied.status == 502, "\(String(buffer: lied.body))")
            let pulled = try await pull(registry, "up/liar:1", into: cluster.root + "/lied")
            #expect(pulled.status != 0, "\(pulled.output)")
            let meta = MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport)
            #expect(try await meta.blob(Digest(parsing: "sha256:" + layer)!, in: nil) == nil)

            // Told the truth again, the cache takes it.
            try original.write(to: URL(fileURLWithPath: stored))
            let honest = try await pull(registry, "up/liar:1", into: cluster.root + "/honest")
            #expect(honest.status == 0, "\(honest.output)")
            try expectImage(cluster.root + "/honest", from: image)
            #expect(try await meta.blob(Digest(parsing: "sha256:" + layer)!, in: nil) != nil)
        }
    }
}

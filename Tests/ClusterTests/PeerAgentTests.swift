import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// `speedy peer`, the node agent (issue 23): a registry cluster and an agent pointed at it,
    /// pulled through with skopeo and raw HTTP.
    @Suite("Node agent (speedy peer)", .serialized)
    struct PeerAgentTests {
        /// A running agent.
        struct Peer {
            var url: String
            var hostPort: String
            var process: Process
        }

        /// Starts `speedy peer` for `registry` with its cache in ROOT/peer-cache; returns once it is ready.
        func startPeer(_ cluster: ClusterHarness, registry: String, port: Int? = nil, cacheSize: String = "1G", arguments: [String] = []) async throws -> Peer {
            let port = port ?? ClusterHarness.freePort()
            let process = try cluster.start(
                "peer", ["peer", "--listen", "127.0.0.1:\(port)", "--registry", registry, "--cache", cluster.root + "/peer-cache", "--cache-size", cacheSize] + arguments)
            let url = "http://127.0.0.1:\(port)"
            let ready = await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: url, transport: .plain).send(.GET, "/readyz"))?.status == 200
            }
            guard ready else { throw HarnessError("speedy peer did not come up:\n\(cluster.log("peer"))") }
            return Peer(url: url, hostPort: "127.0.0.1:\(port)", process: process)
        }

        /// The sum of a metric's samples on the agent's `/metrics` (0 when absent).
        func metric(_ peer: Peer, _ name: String) async throws -> Double {
            let reply = try await ServiceClient(baseURL: peer.url, transport: .plain).send(.GET, "/metrics")
            return String(buffer: reply.body).split(separator: "\n").filter { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
                .compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
        }

        /// Runs skopeo with `arguments`.
        func skopeo(_ arguments: [String]) async throws -> (status: Int32, output: String) {
            try await ClusterHarness.run("/usr/bin/skopeo", arguments)
        }

        /// Checks that every blob of the layout `pulled` hashes to its name and came from `source`;
        /// returns the largest (the layer).
        @discardableResult
        func checkLayout(_ pulled: String, from source: String) throws -> (digest: String, size: Int) {
            let names = try FileManager.default.contentsOfDirectory(atPath: pulled + "/blobs/sha256")
            let sourceNames = Set(try FileManager.default.contentsOfDirectory(atPath: source + "/blobs/sha256"))
            #expect(names.count == 3)
            var largest = ("", 0)
            for hex in names {
                let data = try Data(contentsOf: URL(fileURLWithPath: pulled + "/blobs/sha256/" + hex))
                #expect(Digest.of([UInt8](data)).hex == hex)
                #expect(sourceNames.contains(hex))
                if data.count > largest.1 { largest = ("sha256:" + hex, data.count) }
            }
            return largest
        }

        @Test func skopeoPullsThroughTheAgentFromTheChunkserversThenFromItsCache() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            // 10 MB of random data: a layer of three 4 MiB chunks.
            let layout = try await cluster.makeImage(named: "app", randomBytes: 10_000_000)
            let push = try await skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            var peer = try await startPeer(cluster, registry: registry.registryURL)

            let first = try await skopeo(["copy", "--src-tls-verify=false", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled1:v1"])
            #expect(first.status == 0, "\(first.output)\n\(cluster.roleLogs(["peer", "imageserver"]))")
            let layer = try checkLayout(cluster.root + "/pulled1", from: layout)
            // The layer and the config came as chunks from the chunkservers, into the cache; from
            // the registry only the manifest, the tag's answers and the chunk maps.
            let fromChunkservers = try await metric(peer, "speedy_peer_chunkserver_bytes_total")
            #expect(fromChunkservers >= Double(layer.size), "\(cluster.log("peer"))")
            #expect(try await metric(peer, "speedy_peer_imageserver_bytes_total") < 100_000)
            #expect(try await metric(peer, "speedy_peer_cache_misses_total") == 2)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 0)
            #expect(FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + layer.digest.dropFirst(7)))
            // Only the agent's user may read the cache: other local users must ask the registry.
            func mode(_ path: String) throws -> Int { try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1 }
            for directory in ["", "/blobs/sha256", "/tmp"] { #expect(try mode(cluster.root + "/peer-cache" + directory) == 0o700, "\(directory)") }
            #expect(try mode(cluster.root + "/peer-cache/blobs/sha256/" + layer.digest.dropFirst(7)) == 0o600)

            // The second pull is served from the cache: no chunk read again.
            let second = try await skopeo(["copy", "--src-tls-verify=false", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled2:v1"])
            #expect(second.status == 0, "\(second.output)")
            try checkLayout(cluster.root + "/pulled2", from: layout)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 2)
            #expect(try await metric(peer, "speedy_peer_chunkserver_bytes_total") == fromChunkservers)
            #expect(try await metric(peer, "speedy_peer_served_bytes_total") >= Double(2 * layer.size))

            // The cache survives a restart of the agent.
            let port = Int(peer.hostPort.split(separator: ":").last!)!
            kill(peer.process.processIdentifier, SIGTERM)
            await peer.process.exited()
            peer = try await startPeer(cluster, registry: registry.registryURL, port: port)
            let third = try await skopeo(["copy", "--src-tls-verify=false", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled3:v1"])
            #expect(third.status == 0, "\(third.output)")
            try checkLayout(cluster.root + "/pulled3", from: layout)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 2)
            #expect(try await metric(peer, "speedy_peer_chunkserver_bytes_total") == 0)

            // Manifests and tags come through; pushes do not.
            let tags = try await skopeo(["list-tags", "--tls-verify=false", "docker://\(peer.hostPort)/team/app"])
            #expect(tags.output.contains("\"v1\""), "\(tags.output)")
            let pushThrough = try await skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(peer.hostPort)/team/other:v1"])
            #expect(pushThrough.status != 0)
            let agent = ServiceClient(baseURL: peer.url, transport: .plain)
            let post = try await agent.send(.POST, "/v2/team/other/blobs/uploads/")
            #expect(post.status == 405)
            #expect(errorCode(post.body) == "UNSUPPORTED")
            #expect(String(buffer: post.body).contains("speedy peer serves pulls only: push to the registry"))
            #expect(try await agent.send(.DELETE, "/v2/team/app/manifests/v1").status == 405)
            #expect(try await agent.send(.GET, "/healthz").status == 200)
            let metrics = String(buffer: try await agent.send(.GET, "/metrics").body)
            #expect(metrics.contains("route=\"/v2/<name>/blobs/<digest>\""), "\(metrics)")
            #expect(metrics.contains("speedy_peer_cache_bytes "))
            // A blob HEAD is forwarded, with the registry's headers.
            let head = try await agent.send(.HEAD, "/v2/team/app/blobs/\(layer.digest)")
            #expect(head.status == 200)
            #expect(head.headers.first(name: "Docker-Content-Digest") == layer.digest)
            #expect(head.headers.first(name: "Content-Length") == String(layer.size))
        }

        /// An htpasswd line made by `speedy htpasswd` (``RegistryAuthTests/htpasswdLine(user:password:)``).
        func htpasswdLine(user: String, password: String) async throws -> String {
            try await RegistryAuthTests().htpasswdLine(user: user, password: password)
        }

        func basic(_ user: String, _ password: String) -> (String, String) { RegistryAuthTests().basic(user, password) }

        /// With logins on, the registry decides every blob the agent serves: a user with the
        /// right pulls through it (the token flow goes to the registry's token endpoint), and a
        /// client with no, wrong or insufficient credentials is refused even for a cached blob.
        @Test func theRegistryDecidesWhoPullsEvenFromTheCache() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let users = cluster.root + "/htpasswd"
            var lines: [String] = []
            for user in ["alice", "reader", "outsider"] { lines.append(try await htpasswdLine(user: user, password: "\(user)-pass")) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: users, atomically: true, encoding: .utf8)
            try "alice ** pull,push,delete\nreader team/* pull\n".write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            try String(repeating: "k", count: 40).write(toFile: cluster.root + "/token-key", atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(imageserverArguments: [
                "--htpasswd", users, "--access", cluster.root + "/access", "--token-key-file", cluster.root + "/token-key",
            ])
            let layout = try await cluster.makeImage(named: "app", randomBytes: 5_000_000)
            let push = try await skopeo(["copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pass", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let peer = try await startPeer(cluster, registry: registry.registryURL)

            // No credentials: the registry's challenge comes back, pointing at its token endpoint.
            let agent = ServiceClient(baseURL: peer.url, transport: .plain)
            let probe = try await agent.send(.GET, "/v2/")
            #expect(probe.status == 401)
            #expect(probe.headers.first(name: "WWW-Authenticate")?.contains("realm=\"\(registry.registryURL)/token\"") == true)
            let anonymous = try await skopeo(["copy", "--src-tls-verify=false", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/anonymous:v1"])
            #expect(anonymous.status != 0)

            // reader pulls through the agent (Basic to the agent, then the registry's token).
            let pulled = try await skopeo(["copy", "--src-tls-verify=false", "--src-creds", "reader:reader-pass", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.roleLogs(["peer", "imageserver"]))")
            let layer = try checkLayout(cluster.root + "/pulled", from: layout)
            #expect(FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + layer.digest.dropFirst(7)))

            // The layer is cached now; still nobody else gets it.
            let hits = try await metric(peer, "speedy_peer_cache_hits_total")
            let path = "/v2/team/app/blobs/\(layer.digest)"
            let none = try await agent.send(.GET, path)
            #expect(none.status == 401)
            #expect(errorCode(none.body) == "UNAUTHORIZED")
            #expect(none.headers.first(name: "WWW-Authenticate")?.contains("scope=\"repository:team/app:pull\"") == true)
            #expect(try await agent.send(.GET, path, headers: [basic("reader", "wrong")]).status == 401)
            let outsider = try await agent.send(.GET, path, headers: [basic("outsider", "outsider-pass")])
            #expect([401, 403].contains(outsider.status))
            #expect(try await agent.send(.GET, path, headers: [("Authorization", "Bearer not.a.token")]).status == 401)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == hits)
            // reader gets it from the cache.
            let allowed = try await agent.send(.GET, path, headers: [basic("reader", "reader-pass")], limit: 16 << 20)
            #expect(allowed.status == 200)
            #expect(Digest.of(Array(allowed.body.readableBytesView)).description == layer.digest)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == hits + 1)
            // A push with good credentials is still refused: the agent serves pulls only.
            let post = try await agent.send(.POST, "/v2/team/app/blobs/uploads/", headers: [basic("alice", "alice-pass")])
            #expect(post.status == 405)
            #expect(errorCode(post.body) == "UNSUPPORTED")
            #expect(!cluster.log("peer").contains("reader-pass"))
        }

        /// Damages, in place under the running chunkservers, the record of `fileId` on each of `members`.
        func damage(_ cluster: ClusterHarness, fileId: UInt64, on members: [String]) throws {
            for member in members {
                let volume = cluster.root + "/\(member)/volume-000001.dat"
                let record = try #require(try VolumeRecords.scan(volume).first { $0.fileId == fileId })
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: volume))
                try handle.seek(toOffset: record.payloadOffset + 1000)
                try handle.write(contentsOf: Data([0x00, 0xff, 0x00, 0xff, 0x55]))
                try handle.close()
            }
        }

        /// A chunk damaged on two members of three is read from the third; a chunk damaged on
        /// every member fails the download: the response is cut short (never a complete answer
        /// with wrong bytes) and nothing enters the cache.
        @Test func damagedChunksAreReadElsewhereOrFailTheDownloadWithoutCaching() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            func payload(_ count: Int, _ seed: Int) -> [UInt8] { TestBytes.random(count, seed: seed) }
            let a = payload(10_000_000, 1)  // three chunks
            let b = payload(6_000_000, 2)  // two chunks
            for (data, repo) in [(a, "team/a"), (b, "team/b")] {
                let pushed = try await client.send(.POST, "/v2/\(repo)/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data))
                #expect(pushed.status == 201)
            }
            // A's chunks were written before B's: the lowest file ids are A's, the highest B's.
            let fileIds = try VolumeRecords.scan(cluster.root + "/cs1/volume-000001.dat").map(\.fileId).sorted()
            #expect(fileIds.count == 5)
            try damage(cluster, fileId: fileIds[1], on: ["cs1", "cs2"])
            try damage(cluster, fileId: fileIds[4], on: ["cs1", "cs2", "cs3"])
            let peer = try await startPeer(cluster, registry: registry.registryURL)
            let agent = ServiceClient(baseURL: peer.url, timeout: .seconds(60), transport: .plain)

            let good = try await agent.send(.GET, "/v2/team/a/blobs/\(Digest.of(a))", limit: 32 << 20)
            #expect(good.status == 200)
            #expect(Array(good.body.readableBytesView) == a, "\(cluster.log("peer"))")
            #expect(FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + Digest.of(a).hex))
            // Read as chunks: the damaged one was refused by (or failed its CRC from) the members
            // asked before the good one; cs1 and cs2 are damaged, and a member is asked at most once.
            #expect(try await metric(peer, "speedy_peer_chunkserver_bytes_total") == Double(a.count))
            let retries = cluster.log("peer").split(separator: "\n").filter { $0.contains("trying the next member") }
            #expect(retries.count <= 2, "\(retries)")

            // B cannot be read whole anywhere: the client never gets a complete 200.
            do {
                let broken = try await agent.send(.GET, "/v2/team/b/blobs/\(Digest.of(b))", limit: 32 << 20)
                #expect(broken.status != 200, "a complete answer for a blob no one can read: \(broken.body.readableBytes) bytes")
            } catch {
                // The connection ended before the body did: what a failed download looks like.
            }
            #expect(!FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + Digest.of(b).hex))
            #expect(await cluster.eventually(within: 5) {
                ((try? FileManager.default.contentsOfDirectory(atPath: cluster.root + "/peer-cache/tmp")) ?? ["?"]).isEmpty
            })
            #expect(try await metric(peer, "speedy_peer_failed_downloads_total") >= 1, "\(cluster.log("peer"))")
            // Members send chunks to agents unchecked; one whose copy failed the map's CRC was
            // asked to check it itself, and refused it. (B's damaged chunk was asked of every
            // member; which member A's damaged chunk is read from first is the map's random turn.)
            #expect(await cluster.eventually(within: 10) { cluster.log("peer").contains("its own check: answered 500") }, "\(cluster.log("peer"))")
            // A is still served whole, from the cache.
            let again = try await agent.send(.GET, "/v2/team/a/blobs/\(Digest.of(a))", limit: 32 << 20)
            #expect(Array(again.body.readableBytesView) == a)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 1)
        }

        /// The cache keeps to its size, least recently used out first; two pulls of one blob at
        /// once read its chunks once.
        @Test func theCacheEvictsTheLeastRecentlyUsedAndConcurrentPullsFetchOnce() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            func payload(_ count: Int, _ seed: Int) -> [UInt8] { TestBytes.random(count, seed: seed) }
            let blobs = [payload(5_000_000, 1), payload(5_000_000, 2), payload(5_000_000, 3), payload(9_000_000, 4)]
            for data in blobs {
                let pushed = try await client.send(.POST, "/v2/team/c/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data))
                #expect(pushed.status == 201)
            }
            let peer = try await startPeer(cluster, registry: registry.registryURL, cacheSize: "12M")
            let agent = ServiceClient(baseURL: peer.url, timeout: .seconds(60), transport: .plain)
            func get(_ data: [UInt8]) async throws {
                let reply = try await agent.send(.GET, "/v2/team/c/blobs/\(Digest.of(data))", limit: 32 << 20)
                #expect(reply.status == 200)
                #expect(Array(reply.body.readableBytesView) == data)
            }
            func cached(_ data: [UInt8]) -> Bool {
                FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + Digest.of(data).hex)
            }
            try await get(blobs[0])
            try await get(blobs[1])
            try await get(blobs[0])  // blobs[0] is now the more recently used
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 1)
            try await get(blobs[2])  // 15 MB > 12 MB: blobs[1] goes
            #expect(cached(blobs[0]) && !cached(blobs[1]) && cached(blobs[2]))
            #expect(try await metric(peer, "speedy_peer_cache_bytes") == 10_000_000)

            // Two pulls of blobs[3] at once: one fetch, the other served from the cache it filled.
            let before = try await metric(peer, "speedy_peer_chunkserver_bytes_total") + metric(peer, "speedy_peer_imageserver_bytes_total")
            async let first: Void = get(blobs[3])
            async let second: Void = get(blobs[3])
            _ = try await (first, second)
            let after = try await metric(peer, "speedy_peer_chunkserver_bytes_total") + metric(peer, "speedy_peer_imageserver_bytes_total")
            // The chunks of one copy, and two chunk maps.
            #expect(after - before < Double(blobs[3].count) + 100_000, "\(after - before) bytes fetched for two pulls")
            #expect(cached(blobs[3]))
            #expect(try await metric(peer, "speedy_peer_cache_bytes") <= 12_000_000)

            // Without the registry nothing is served, not even from the cache: no one is left to
            // say who may pull it.
            let imageserver = try #require(ClusterHarness.pid(listeningOn: Int(registry.hostPort.split(separator: ":").last!)!))
            kill(imageserver, SIGKILL)
            let down = try await agent.send(.GET, "/v2/team/c/blobs/\(Digest.of(blobs[3]))")
            #expect(down.status == 503)
            #expect(errorCode(down.body) == "UNAVAILABLE")
            #expect(try await agent.send(.GET, "/v2/team/c/tags/list").status == 503)
        }

        /// `speedy up --auth --tls`: the agent reaches the registry, and the chunkservers, over
        /// TLS with the cluster's CA (`--ca`), and a user pulls through it with skopeo.
        @Test func theAgentPullsFromAClusterWithTLSAndLogins() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (data, registryPort, up) = try cluster.startSecureUp()
            defer { up.stop() }
            let host = "127.0.0.1:\(registryPort)"
            let ready = await cluster.eventually(within: 40) { cluster.log("up").contains("Speedy is up") }
            #expect(ready, "\(cluster.log("up"))")
            let password = try String(contentsOfFile: data + "/admin-password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            let layout = try await cluster.makeImage(named: "secure", randomBytes: 6_000_000)
            let push = try await skopeo(["copy", "--dest-cert-dir", data + "/tls", "--dest-creds", "admin:\(password)", "oci:\(layout):latest", "docker://\(host)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")

            let port = ClusterHarness.freePort()
            try cluster.start(
                "peer", ["peer", "--listen", "127.0.0.1:\(port)", "--registry", "https://\(host)", "--ca", data + "/tls/ca.crt", "--cache", cluster.root + "/peer-cache"])
            let peer = Peer(url: "http://127.0.0.1:\(port)", hostPort: "127.0.0.1:\(port)", process: Process())
            #expect(await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: peer.url, transport: .plain).send(.GET, "/readyz"))?.status == 200
            }, "\(cluster.log("peer"))")
            let pulled = try await skopeo(["copy", "--src-tls-verify=false", "--src-creds", "admin:\(password)", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.log("peer"))")
            let layer = try checkLayout(cluster.root + "/pulled", from: layout)
            // The chunks came over TLS from the chunkservers, with tickets.
            #expect(try await metric(peer, "speedy_peer_chunkserver_bytes_total") >= Double(layer.size), "\(cluster.log("peer"))")
            #expect(try await metric(peer, "speedy_peer_imageserver_bytes_total") < 100_000)
            #expect(!cluster.log("peer").contains(password))
        }

        /// `--blobs-from-registry` (and so a registry without chunk maps): blobs come through the
        /// registry's blob GET, checked and cached the same way; a cached blob is served only
        /// after the registry answered its HEAD with the client's credentials.
        @Test func blobsFromTheRegistryAreCachedAndStillAuthorizedEachTime() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let users = cluster.root + "/htpasswd"
            try (try await htpasswdLine(user: "reader", password: "reader-pass") + "\n" + (try await htpasswdLine(user: "alice", password: "alice-pass")) + "\n")
                .write(toFile: users, atomically: true, encoding: .utf8)
            try "alice ** pull,push\nreader team/* pull\n".write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(imageserverArguments: ["--htpasswd", users, "--access", cluster.root + "/access"])
            let layout = try await cluster.makeImage(named: "app", randomBytes: 5_000_000)
            let push = try await skopeo(["copy", "--dest-tls-verify=false", "--dest-creds", "alice:alice-pass", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let peer = try await startPeer(cluster, registry: registry.registryURL, arguments: ["--blobs-from-registry"])

            let pulled = try await skopeo(["copy", "--src-tls-verify=false", "--src-creds", "reader:reader-pass", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.log("peer"))")
            let layer = try checkLayout(cluster.root + "/pulled", from: layout)
            #expect(try await metric(peer, "speedy_peer_chunkserver_bytes_total") == 0)
            let fromRegistry = try await metric(peer, "speedy_peer_imageserver_bytes_total")
            #expect(fromRegistry >= Double(layer.size))
            #expect(FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + layer.digest.dropFirst(7)))

            let agent = ServiceClient(baseURL: peer.url, transport: .plain)
            let path = "/v2/team/app/blobs/\(layer.digest)"
            #expect(try await agent.send(.GET, path).status == 401)
            #expect(try await agent.send(.GET, path, headers: [basic("reader", "wrong")]).status == 401)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 0)
            let allowed = try await agent.send(.GET, path, headers: [basic("reader", "reader-pass")], limit: 16 << 20)
            #expect(allowed.status == 200)
            #expect(Digest.of(Array(allowed.body.readableBytesView)).description == layer.digest)
            #expect(try await metric(peer, "speedy_peer_cache_hits_total") == 1)
            // Only the HEAD went to the registry for it.
            #expect(try await metric(peer, "speedy_peer_imageserver_bytes_total") < fromRegistry + 10_000)
        }

        /// Members that hold another chunk under a chunk's key (intact by their own CRC, wrong by
        /// the map's): the agent's own CRC check refuses their copies and asks the next member;
        /// when every member has a wrong copy, the download fails and nothing is cached.
        @Test func chunksThatFailTheMapsCRCAreReadElsewhere() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            func payload(_ count: Int, _ seed: Int) -> [UInt8] { TestBytes.random(count, seed: seed) }
            let two = payload(6_000_000, 1)  // two chunks
            let one = payload(1_000_000, 2)  // one chunk
            for data in [two, one] {
                let pushed = try await client.send(.POST, "/v2/team/x/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data))
                #expect(pushed.status == 201)
            }
            let records = try VolumeRecords.scan(cluster.root + "/cs1/volume-000001.dat").sorted { $0.fileId < $1.fileId }
            #expect(records.count == 3)
            /// Replaces the chunk `record` on `members` with as many other bytes, stored with their own CRC.
            func replace(_ record: VolumeRecords.Record, on members: [String]) async throws {
                let key = ChunkKey(group: 1, fileId: record.fileId)
                let other = ByteBuffer(bytes: [UInt8](repeating: 0x5a, count: Int(record.length)))
                for (name, addr, _) in registry.chunkservers where members.contains(name) {
                    let server = ChunkServerClient(baseURL: addr, transport: ClusterHarness.transport)
                    try await server.delete(key)
                    _ = try await server.put(key, data: other)
                }
            }
            try await replace(records[1], on: ["cs1", "cs2"])
            try await replace(records[2], on: ["cs1", "cs2", "cs3"])
            let peer = try await startPeer(cluster, registry: registry.registryURL)
            let agent = ServiceClient(baseURL: peer.url, timeout: .seconds(60), transport: .plain)

            let good = try await agent.send(.GET, "/v2/team/x/blobs/\(Digest.of(two))", limit: 32 << 20)
            #expect(good.status == 200)
            #expect(Array(good.body.readableBytesView) == two, "\(cluster.log("peer"))")
            let refusedBefore = try await metric(peer, "speedy_peer_chunk_crc_failures_total")
            #expect(refusedBefore <= 2)

            // Every member's copy of `one` is wrong: three CRC failures, then the registry, which
            // cannot serve it either; the client never gets a complete answer, the cache nothing.
            do {
                let broken = try await agent.send(.GET, "/v2/team/x/blobs/\(Digest.of(one))", limit: 32 << 20)
                #expect(broken.status != 200, "a blob no member holds intact was served")
            } catch {
                // Cut short: a failed download.
            }
            #expect(try await metric(peer, "speedy_peer_chunk_crc_failures_total") == refusedBefore + 3, "\(cluster.log("peer"))")
            #expect(!FileManager.default.fileExists(atPath: cluster.root + "/peer-cache/blobs/sha256/" + Digest.of(one).hex))
        }

        /// Starts Debian's `docker-registry` (the reference registry: no chunk maps) on a free
        /// port, logging every request; returns its host and port.
        func startReferenceRegistry(_ cluster: ClusterHarness) async throws -> String {
            let port = ClusterHarness.freePort()
            let config = cluster.root + "/docker-registry.yml"
            try """
                version: 0.1
                log: { level: info }
                storage: { filesystem: { rootdirectory: \(cluster.root)/docker-registry-data } }
                http: { addr: "127.0.0.1:\(port)" }

                """.write(toFile: config, atomically: true, encoding: .utf8)
            try cluster.start("docker-registry", ["serve", config], program: "/usr/bin/docker-registry")
            let ready = await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: "http://127.0.0.1:\(port)", transport: .plain).send(.GET, "/v2/"))?.status == 200
            }
            guard ready else { throw HarnessError("docker-registry did not come up:\n\(cluster.log("docker-registry"))") }
            return "127.0.0.1:\(port)"
        }

        /// The request targets in docker-registry's access log (`"GET /v2/… HTTP/1.1" 200 …`).
        func accessTargets(_ cluster: ClusterHarness) -> [String] {
            cluster.log("docker-registry").split(separator: "\n").compactMap { line in
                guard let quote = line.firstIndex(of: "\""), let request = line[line.index(after: quote)...].split(separator: "\"").first else { return nil }
                let parts = request.split(separator: " ")
                return parts.count == 3 && parts[2].hasPrefix("HTTP/") ? String(parts[1]) : nil
            }
        }

        /// A registry without chunk maps is asked for one once, not for every blob (the agent
        /// remembers its answer), and serves the blobs through its blob GET. And whatever target a
        /// client sends (dot segments, an absolute form), only the registry's /v2/ API is reached.
        @Test func aRegistryWithoutChunkMapsIsAskedOnceAndOnlyItsV2APIIsReached() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await startReferenceRegistry(cluster)
            let layout = try await cluster.makeImage(named: "app", randomBytes: 3_000_000)
            let push = try await skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(registry)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let peer = try await startPeer(cluster, registry: "http://" + registry)
            let agent = ServiceClient(baseURL: peer.url, timeout: .seconds(60), transport: .plain)
            func chunkMapRequests() -> Int { accessTargets(cluster).filter { $0.contains("/_speedy/chunks/") }.count }

            // The image's config and layer, one after the other: one chunk map request in all.
            let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
            let manifest = try await agent.send(.GET, "/v2/team/app/manifests/v1", headers: [accept])
            let json = try #require(try JSONSerialization.jsonObject(with: Data(manifest.body.readableBytesView)) as? [String: Any], "\(manifest.status)")
            let layers = (json["layers"] as? [[String: Any]]) ?? []
            let digests = ([json["config"] as? [String: Any]] + layers).compactMap { $0?["digest"] as? String }
            #expect(digests.count == 2)
            for digest in digests {
                let reply = try await agent.send(.GET, "/v2/team/app/blobs/\(digest)", limit: 16 << 20)
                #expect(reply.status == 200)
                #expect(Digest.of(Array(reply.body.readableBytesView)).description == digest)
            }
            #expect(chunkMapRequests() == 1, "\(accessTargets(cluster))")
            let pulled = try await skopeo(["copy", "--src-tls-verify=false", "docker://\(peer.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.log("peer"))")
            try checkLayout(cluster.root + "/pulled", from: layout)
            #expect(chunkMapRequests() == 1)

            // Targets that would leave /v2/ are answered by the agent, never forwarded.
            let port = Int(peer.hostPort.split(separator: ":").last!)!
            for target in ["//v2/../debug/vars", "/v2/../debug/vars", "/v2/%2e%2e/debug/vars", "/v2/team/app/./tags/list", "http://\(registry)/debug/vars"] {
                let answer = LoopbackSocket.sendRaw(port: port, "GET \(target) HTTP/1.1\r\nHost: \(peer.hostPort)\r\nConnection: close\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 404"), "\(target): \(answer)")
            }
            let dotted = LoopbackSocket.sendRaw(port: port, "GET /v2/../debug/vars HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(dotted.contains("NAME_UNKNOWN") && dotted.contains("speedy peer forwards only /v2/ paths"), "\(dotted)")
            // An absolute-form target reaches the registry's /v2/ path it names, query and all.
            let absolute = LoopbackSocket.sendRaw(port: port, "GET http://elsewhere.example/v2/team/app/tags/list?n=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            #expect(absolute.hasPrefix("HTTP/1.1 200") && absolute.contains("\"v1\""), "\(absolute)")
            let targets = accessTargets(cluster)
            #expect(targets.allSatisfy { $0.hasPrefix("/v2/") && !$0.contains("/.") && !$0.contains("%2e") }, "\(targets)")
            #expect(targets.contains("/v2/team/app/tags/list?n=5"), "\(targets)")
        }

        /// The registries.conf of docs/peer.md: skopeo (containers/image, as podman and CRI-O)
        /// names the registry and pulls through the agent, its mirror.
        @Test func aRegistriesConfMirrorSendsPullsThroughTheAgent() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let layout = try await cluster.makeImage(named: "app", randomBytes: 5_000_000)
            let push = try await skopeo(["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "\(push.output)")
            let peer = try await startPeer(cluster, registry: registry.registryURL)
            let conf = cluster.root + "/registries.conf"
            try """
                [[registry]]
                location = "\(registry.hostPort)"
                insecure = true

                [[registry.mirror]]
                location = "\(peer.hostPort)"
                insecure = true

                """.write(toFile: conf, atomically: true, encoding: .utf8)
            let pulled = try await skopeo(["--registries-conf", conf, "copy", "docker://\(registry.hostPort)/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)")
            let layer = try checkLayout(cluster.root + "/pulled", from: layout)
            #expect(try await metric(peer, "speedy_peer_cache_misses_total") == 2)
            #expect(try await metric(peer, "speedy_peer_chunkserver_bytes_total") >= Double(layer.size))
        }
    }
}

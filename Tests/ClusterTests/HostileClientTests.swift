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
    /// What an attacker or a careless client can do with nothing but HTTP: every finding of the
    /// "safe on a shared network" review, replayed against real processes.
    @Suite("Hostile clients", .serialized)
    struct HostileClientTests {
        /// The registry as an anonymous client sees it (no cluster secret).
        func anonymous(_ registry: ClusterHarness.Registry) -> ServiceClient {
            ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: .plain)
        }

        func port(_ registry: ClusterHarness.Registry) -> Int { Int(registry.hostPort.split(separator: ":")[1])! }

        /// `0-18446744073709551615` used to trap the imageserver (`end - start + 1`); now it is a
        /// 400 and the registry keeps serving. The other malformed numbers get the spec's codes.
        @Test func overflowingNumbersAreRefusedAndTheRegistryKeepsServing() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = anonymous(registry)
            let start = try await client.send(.POST, "/v2/hostile/blobs/uploads/")
            #expect(start.status == 202)
            let location = try #require(start.headers.first(name: "Location"))
            for range in ["0-18446744073709551615", "bytes 0-18446744073709551615/*"] {
                let reply = try await client.send(.PATCH, location, body: ByteBuffer(string: "x"), headers: [("Content-Range", range)])
                #expect(reply.status == 400, "\(range): \(String(buffer: reply.body))")
                #expect(errorCode(reply.body) == "BLOB_UPLOAD_INVALID")
            }
            // Not where the upload is: 416 with the upload's Range, whatever the size of the numbers.
            let far = try await client.send(
                .PATCH, location, body: ByteBuffer(string: "x"), headers: [("Content-Range", "18446744073709551615-18446744073709551615")])
            #expect(far.status == 416)
            #expect(far.headers.first(name: "Range") == "0-0")
            for junk in ["99999999999999999999999-1", "-1-5", "a-b", "5"] {
                let reply = try await client.send(.PATCH, location, body: ByteBuffer(string: "x"), headers: [("Content-Range", junk)])
                #expect(reply.status == 400, "\(junk)")
            }
            // Listings: a huge n is capped, a bad one is a spec error code.
            #expect(try await client.send(.GET, "/v2/_catalog?n=99999999999999999999999999").status == 200)
            let negative = try await client.send(.GET, "/v2/_catalog?n=-1")
            #expect(negative.status == 400)
            #expect(errorCode(negative.body) == "UNSUPPORTED")
            // Past the last name: an empty page and no Link pointing back at itself.
            let past = try await client.send(.GET, "/v2/_catalog?last=zzzz")
            #expect(past.status == 200 && past.headers.first(name: "Link") == nil)
            // OPTIONS says what a path takes instead of an empty 404.
            let options = try await client.send(.OPTIONS, location)
            #expect(options.status == 204)
            #expect(options.headers.first(name: "Allow")?.contains("PATCH") == true)

            #expect(try await client.send(.GET, "/v2/").status == 200)
            let status = try await client.send(.GET, location)
            #expect(status.status == 204)
            #expect(status.headers.first(name: "Range") == "0-0")
        }

        /// 30 uploads that send one byte and go silent used to take a whole chunk buffer each and
        /// stall every other push and pull (24 were enough). Now another client pushes and pulls
        /// while they hang, and the idle watchdog closes them and returns what they held.
        @Test func stalledUploadsDoNotStallOtherClients() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--client-idle-timeout", "15"])
            let client = anonymous(registry)
            var stalled: [Int32] = []
            var locations: [String] = []
            defer { stalled.forEach { close($0) } }
            for _ in 0..<30 {
                let start = try await client.send(.POST, "/v2/stall/blobs/uploads/")
                let location = try #require(start.headers.first(name: "Location"))
                locations.append(location)
                let request = "PATCH \(location) HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 4194304\r\n\r\nx"
                stalled.append(try #require(LoopbackSocket.openStalled(port: port(registry), request)))
            }
            try await Task.sleep(for: .milliseconds(500))

            // 10 MB in three chunks, pushed and pulled back while the 30 hang.
            let data = TestBytes.random(10_000_000, seed: 7)
            let digest = Digest.of(data)
            let push = try await client.send(.POST, "/v2/busy/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(push.status == 201, "\(String(buffer: push.body))")
            let pull = try await client.send(.GET, "/v2/busy/blobs/\(digest)")
            #expect(pull.status == 200)
            #expect(Array(pull.body.readableBytesView) == data)
            // They were all still hanging: the push and pull did not wait for them.
            #expect(stalled.filter { LoopbackSocket.peerClosed($0) }.isEmpty)

            // The watchdog cuts every one off, and none of their single bytes was recorded.
            #expect(await cluster.eventually(within: 45) { stalled.allSatisfy { LoopbackSocket.peerClosed($0) } })
            #expect(cluster.log("imageserver").contains("sent or took next to nothing"))
            for location in locations.prefix(3) {
                let status = try await client.send(.GET, location)
                #expect(status.headers.first(name: "Range") == "0-0")
            }
            // The memory they held is back: a second 10 MB push goes through.
            let again = data.map { $0 ^ 0x5a }
            #expect(try await client.send(.POST, "/v2/busy/blobs/uploads/?digest=\(Digest.of(again))", body: ByteBuffer(bytes: again)).status == 201)
        }

        /// A role without a secret refuses to start and says how to give one; `--insecure` starts
        /// it, saying loudly that it is unprotected. A tool without the secret is refused (exit 2)
        /// and told why.
        @Test func rolesRefuseToStartWithoutASecret() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let unset = ["SPEEDY_CLUSTER_SECRET_FILE": ""]
            let speedy = ClusterHarness.binDirectory + "/speedy"
            let listen = { "127.0.0.1:\(ClusterHarness.freePort())" }
            let roles = [
                ["chunkmaster", "--listen", listen(), "--data", cluster.root + "/cm"],
                ["metaserver", "--listen", listen(), "--data", cluster.root + "/meta"],
                ["chunkserver", "--group", "1", "--master", "http://127.0.0.1:1", "--listen", listen(), "--data", cluster.root + "/cs"],
                ["imageserver", "--listen", listen()],
            ]
            for arguments in roles {
                let refused = try await ClusterHarness.run(speedy, arguments, environment: unset)
                #expect(refused.status != 0, "\(arguments[0]): \(refused.output)")
                #expect(refused.output.contains("needs the cluster secret"), "\(arguments[0]): \(refused.output)")
            }
            let short = cluster.root + "/short-secret"
            try "too-short".write(toFile: short, atomically: true, encoding: .utf8)
            let weak = try await ClusterHarness.run(speedy, ["metaserver", "--cluster-secret-file", short, "--data", cluster.root + "/m"], environment: unset)
            #expect(weak.status != 0)
            #expect(weak.output.contains("at least 16"))

            let port = ClusterHarness.freePort()
            let insecure = try cluster.start("insecure-master", ["chunkmaster", "--insecure", "--listen", "127.0.0.1:\(port)", "--data", cluster.root + "/im"])
            let up = await cluster.eventually(within: 20) { cluster.log("insecure-master").contains("listening") }
            #expect(up)
            #expect(cluster.log("insecure-master").contains("INSECURE"))
            #expect(try await ServiceClient(baseURL: "http://127.0.0.1:\(port)", transport: .plain).send(.GET, "/v1/cluster").status == 200)
            kill(insecure.processIdentifier, SIGTERM)

            let registry = try await cluster.startRegistry()
            let tool = try await ClusterHarness.run(
                ClusterHarness.binDirectory + "/chunktool", ["status", "--master", registry.masterURL], environment: unset)
            #expect(tool.status == 2)
            #expect(tool.output.contains("no cluster secret was given"), "\(tool.output)")
        }

        /// The routes of every internal role, read from their sources (so a new route cannot be
        /// missed): each refuses a request without the secret or with a wrong one.
        static func internalRoutes() throws -> [(role: String, method: HTTPMethod, path: String)] {
            let pattern = try NSRegularExpression(pattern: #"router\.(get|post|put|delete|patch|head)\("([^"]+)""#)
            var routes: [(String, HTTPMethod, String)] = []
            for role in ["ChunkMaster", "ChunkServer", "MetaServer"] {
                let directory = CompletionsTests.root + "/Sources/Servers/" + role
                for file in try FileManager.default.contentsOfDirectory(atPath: directory) where file.hasSuffix(".swift") {
                    let text = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
                    for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                        let method = String(text[Range(match.range(at: 1), in: text)!]).uppercased()
                        var path = String(text[Range(match.range(at: 2), in: text)!])
                        for (parameter, value) in [("{group}", "1"), ("{fileId}", "4242"), ("{id}", "x"), ("{digest}", "sha256:" + String(repeating: "0", count: 64))] {
                            path = path.replacingOccurrences(of: parameter, with: value)
                        }
                        routes.append((role, HTTPMethod(rawValue: method), path))
                    }
                }
            }
            return routes
        }

        @Test func everyInternalRouteRefusesRequestsWithoutTheSecret() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let bases = ["ChunkMaster": registry.masterURL, "ChunkServer": "http://" + registry.chunkservers[0].addr, "MetaServer": registry.metaURL]
            let routes = try Self.internalRoutes()
            #expect(routes.count >= 30, "found only \(routes.count) routes: is the scan still matching the sources?")
            let wrong = ClusterSecret("not-the-cluster-secret-at-all")!
            for (role, method, path) in routes {
                let base = bases[role]!
                let withSecret = try await ServiceClient(baseURL: base, transport: ClusterHarness.transport).send(method, path)
                if path == "/v1/health" {
                    #expect(try await ServiceClient(baseURL: base, transport: .plain).send(method, path).status == 200)
                    continue
                }
                for secret in [nil, wrong] {
                    let reply = try await ServiceClient(baseURL: base, transport: ClusterTransport(secret: secret)).send(method, path)
                    #expect(reply.status == 401, "\(role) \(method) \(path) without the secret answered \(reply.status)")
                    #expect(reply.headers.first(name: "WWW-Authenticate") != nil)
                }
                // With the secret the route is reached (whatever it makes of an empty request).
                #expect(withSecret.status != 401, "\(role) \(method) \(path) refused the secret")
                // Spellings the router routes to the same handler are refused the same way.
                for variant in ["/" + path, path + "/", path.replacingOccurrences(of: "/", with: "//")] {
                    let raw = Self.rawRequest(port: Self.port(of: base), variant, method: method.rawValue)
                    #expect(raw.status == 401, "\(role) \(method) \(variant) without the secret answered \(raw.status)")
                }
            }
            // Refusals are logged, and the secret is in no log.
            let secret = try ClusterSecret.load(path: ClusterHarness.secretFile).value
            for name in ["master", "cs1", "meta", "imageserver"] {
                #expect(!cluster.log(name).contains(secret), "\(name)'s log holds the secret")
            }
            #expect(cluster.log("meta").contains("refused"))
        }

        /// The port of a base URL or `HOST:PORT`.
        static func port(of base: String) -> Int { Int(base.split(separator: ":").last!.prefix { $0.isNumber })! }

        /// `method target` sent byte for byte, so no client tidies the path on the way (an HTTP
        /// client library may fold `//` or decode `%6D`): the status (0 if none) and the body.
        static func rawRequest(port: Int, _ target: String, method: String = "GET", secret: ClusterSecret? = nil) -> (status: Int, body: String) {
            var request = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n"
            if let secret { request += "Authorization: \(secret.authorization)\r\n" }
            let reply = LoopbackSocket.sendRaw(port: port, request + "\r\n")
            let status = reply.hasPrefix("HTTP/1.1 ") ? Int(reply.dropFirst(9).prefix(3)) ?? 0 : 0
            let body = reply.range(of: "\r\n\r\n").map { String(reply[$0.upperBound...]) } ?? ""
            return (status, body)
        }

        /// Issue 20: the registry's `/metrics` guard compared the path literally while the router
        /// skips empty pieces, so `//metrics` and `/metrics/` served ~100 KB of metrics to
        /// anyone. Every spelling, on every role, is now refused without the secret.
        @Test func noSpellingOfMetricsGetsPastTheSecret() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let secret = try ClusterSecret.load(path: ClusterHarness.secretFile)
            let roles = [
                "imageserver": registry.registryURL, "chunkserver": registry.chunkservers[0].addr, "chunkmaster": registry.masterURL,
                "metaserver": registry.metaURL,
            ]
            let spellings = [
                "//metrics", "/metrics/", "/metrics//", "///metrics///", "/%6Detrics", "/%6detrics", "/metrics%2F", "/./metrics",
                "/x/../metrics", "/metrics/.", "/METRICS", "/metrics?x=1", "/metrics#x", "metrics", "http://127.0.0.1/metrics",
                "http://127.0.0.1//metrics/", "/v2/../metrics", "/v2/..//metrics", "//v1//../metrics",
            ]
            for (role, base) in roles.sorted(by: { $0.key < $1.key }) {
                let port = Self.port(of: base)
                let normal = Self.rawRequest(port: port, "/metrics", secret: secret)
                #expect(normal.status == 200 && normal.body.contains("# TYPE"), "\(role) /metrics with the secret: \(normal.status)")
                #expect(Self.rawRequest(port: port, "/metrics").status == 401, "\(role) /metrics without the secret")
                // These reach the metrics handler (so they are real ways in), and without the
                // secret are refused like the path itself.
                for routed in ["//metrics", "/metrics/", "///metrics///", "http://127.0.0.1//metrics/"] {
                    #expect(Self.rawRequest(port: port, routed, secret: secret).status == 200, "\(role) \(routed) with the secret")
                }
                for spelling in spellings {
                    let reply = Self.rawRequest(port: port, spelling)
                    #expect([400, 401, 403, 404].contains(reply.status), "\(role) \(spelling) without the secret: \(reply.status)")
                    #expect(!reply.body.contains("# TYPE") && !reply.body.contains("speedy_"), "\(role) \(spelling) leaked metrics")
                }
                // The probes stay open however they are spelled.
                #expect(Self.rawRequest(port: port, "//healthz/").status == 200, "\(role) //healthz/")
            }
            // The registry's API stays public; anything else on its port asks for the secret.
            let registryPort = Self.port(of: registry.registryURL)
            #expect(Self.rawRequest(port: registryPort, "/v2/").status == 200)
            #expect(Self.rawRequest(port: registryPort, "/v1/cluster").status == 401)
        }

        /// The attacks of the review, each refused without the secret: a chunk rewritten on a
        /// chunkserver, a group created and a server set OFFLINE on the master, a blob record
        /// pointed at other chunks on the metaserver.
        @Test func writesWithoutTheSecretChangeNothing() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = anonymous(registry)
            let data = Array("the real layer".utf8)
            let digest = Digest.of(data)
            #expect(try await client.send(.POST, "/v2/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data)).status == 201)
            let record = try #require(try await MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport).blob(digest, in: "app"))
            let chunk = try #require(record.chunks.first)
            let key = ChunkKey(group: chunk.group, fileId: chunk.fileId)

            let attacker = { (base: String) in ServiceClient(baseURL: base, transport: .plain) }
            let chunkPath = "/v1/chunks/\(chunk.group)/\(chunk.fileId)"
            // A member holding the chunk (the imageserver's map may not have had all three yet).
            var holder: String?
            for server in registry.chunkservers where (try? await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).get(key)) != nil {
                holder = server.addr
                break
            }
            let addr = try #require(holder)
            #expect(try await attacker("http://" + addr).send(.DELETE, chunkPath).status == 401)
            #expect(try await attacker("http://" + addr).send(.PUT, chunkPath, body: ByteBuffer(string: "evil")).status == 401)
            #expect(String(buffer: try await ChunkServerClient(baseURL: addr, transport: ClusterHarness.transport).get(key)) == "the real layer")

            let before = try await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).snapshot()
            let group = try JSONSerialization.data(withJSONObject: ["id": 99])
            #expect(try await attacker(registry.masterURL).send(.POST, "/v1/groups", body: ByteBuffer(bytes: group)).status == 401)
            let offline = try JSONSerialization.data(withJSONObject: ["status": "OFFLINE"])
            #expect(try await attacker(registry.masterURL).send(.POST, "/v1/servers/cs1/status", body: ByteBuffer(bytes: offline)).status == 401)
            #expect(try await attacker(registry.masterURL).send(.DELETE, "/v1/servers/cs2").status == 401)
            let after = try await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).snapshot()
            #expect(after.groups.map(\.id) == before.groups.map(\.id))
            #expect(after.groups.flatMap(\.members).map(\.status) == before.groups.flatMap(\.members).map(\.status))

            var forged = record
            forged.chunks = [ChunkRef(group: chunk.group, fileId: chunk.fileId + 1000, length: chunk.length, crc: chunk.crc)]
            let body = ByteBuffer(bytes: try WireJSON.encoder().encode(forged))
            #expect(try await attacker(registry.metaURL).send(.POST, "/v1/blobs?repo=app", body: body).status == 401)
            let pulled = try await client.send(.GET, "/v2/app/blobs/\(digest)")
            #expect(pulled.status == 200)
            #expect(String(buffer: pulled.body) == "the real layer")
        }

        /// A blob record rewritten by someone holding the secret (a bug, a stolen secret) to point
        /// at other bytes: `fsck --deep` finds the mismatch, and a verified push of the real
        /// content repairs the record instead of deferring to it.
        @Test func aRecordThatLiesIsFoundAndRepairedByAVerifiedPush() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = anonymous(registry)
            let real = Array(repeating: UInt8(ascii: "r"), count: 300_000)
            let other = Array(repeating: UInt8(ascii: "o"), count: 300_000)
            let digest = Digest.of(real)
            #expect(try await client.send(.POST, "/v2/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: real)).status == 201)
            #expect(try await client.send(.POST, "/v2/app/blobs/uploads/?digest=\(Digest.of(other))", body: ByteBuffer(bytes: other)).status == 201)
            let meta = MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport)
            let honest = try #require(try await meta.blob(digest, in: "app"))
            let otherRecord = try #require(try await meta.blob(Digest.of(other), in: "app"))
            let lie = BlobRecord(digest: digest, size: otherRecord.size, chunks: otherRecord.chunks)
            #expect(try await meta.repairBlob(lie, replacing: honest.chunks, repository: "app").chunks == otherRecord.chunks)

            let fsck = try await cluster.chunktool(["fsck", "--deep", "--master", registry.masterURL, "--meta", registry.metaURL, "--json"])
            #expect(fsck.status == 1, "\(fsck.output)")
            #expect(fsck.output.contains(digest.description) && fsck.output.contains("digestMismatches"), "\(fsck.output)")

            // The real content pushed again (verified on the way in) replaces the lying record.
            #expect(try await client.send(.POST, "/v2/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: real)).status == 201)
            let pulled = try await client.send(.GET, "/v2/app/blobs/\(digest)")
            #expect(Array(pulled.body.readableBytesView) == real)
            #expect(cluster.log("imageserver").contains("does not hold its bytes"))
            let clean = try await cluster.chunktool(["fsck", "--deep", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(clean.status == 0, "\(clean.output)")
            #expect(clean.output.contains("all match"))

            // An honest duplicate push keeps the stored record (no churn).
            let before = try #require(try await meta.blob(digest, in: "app"))
            #expect(try await client.send(.POST, "/v2/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: real)).status == 201)
            #expect(try await meta.blob(digest, in: "app")?.chunks == before.chunks)
        }

        /// Abandoned upload sessions used to live forever (2000 opened were all still there);
        /// now they expire and their chunks go, and a client cannot open more than its cap.
        @Test func uploadSessionsExpireAndAreCapped() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // Expire after 3.6 s idle; at most 5 open per client.
            let registry = try await cluster.startRegistry(imageserverArguments: ["--upload-expiry", "0.001", "--uploads-per-client", "5"])
            let client = anonymous(registry)
            var locations: [String] = []
            for _ in 0..<5 {
                let start = try await client.send(.POST, "/v2/cap/blobs/uploads/")
                #expect(start.status == 202)
                locations.append(try #require(start.headers.first(name: "Location")))
            }
            let over = try await client.send(.POST, "/v2/cap/blobs/uploads/")
            #expect(over.status == 429)
            #expect(errorCode(over.body) == "TOOMANYREQUESTS")
            #expect(over.headers.first(name: "Retry-After") != nil)

            // One session has a chunk written; abandoned, it expires and the chunk is deleted.
            let patch = try await client.send(.PATCH, locations[0], body: ByteBuffer(repeating: 7, count: 100_000))
            #expect(patch.status == 202)
            let session = try #require(try await MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport).upload(String(locations[0].split(separator: "/").last!)))
            let chunk = try #require(session.chunks.first)
            let member = ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport)
            #expect((try? await member.get(ChunkKey(group: chunk.group, fileId: chunk.fileId))) != nil)
            let expired = await cluster.eventually(within: 30) {
                (try? await client.send(.GET, locations[0]))?.status == 404
            }
            #expect(expired, "\(cluster.log("imageserver"))")
            #expect(await cluster.eventually(within: 10) { (try? await member.get(ChunkKey(group: chunk.group, fileId: chunk.fileId))) == nil })
            // All five ended, in one sweep or over several (the PATCHed one was touched later).
            let endedCounts = cluster.log("imageserver").split(separator: "\n").compactMap { line -> Int? in
                guard let range = line.range(of: "ended ") else { return nil }
                return Int(line[range.upperBound...].prefix { $0.isNumber })
            }
            #expect(endedCounts.reduce(0, +) == 5, "\(endedCounts)")
            // Their slots are free again.
            #expect(try await client.send(.POST, "/v2/cap/blobs/uploads/").status == 202)
        }
    }
}

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
    /// Several metaservers on one database, and imageservers that name them all.
    @Suite("Metaserver failover", .serialized)
    struct MetaserverFailoverTests {
        /// A master and one group of three chunkservers; the master's URL.
        static func startGroup(_ cluster: ClusterHarness) throws -> String {
            let (masterURL, _) = try cluster.startMaster()
            for i in 1...3 { _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs\(i)") }
            return masterURL
        }

        /// Two metaservers on one store (`--data DIR` or `--database URL`); their ports and processes.
        static func startTwoMetaservers(
            _ cluster: ClusterHarness, master: String, storage: [String], environment: [String: String] = [:]
        ) throws -> (ports: [Int], processes: [Process]) {
            let ports = [ClusterHarness.freePort(), ClusterHarness.freePort()]
            let processes = try ports.enumerated().map { i, port in
                try cluster.start("meta\(i + 1)", ["metaserver", "--listen", "127.0.0.1:\(port)", "--master", master] + storage, environment: environment)
            }
            return (ports, processes)
        }

        /// Waits until every member of the group is RW, and the imageservers have fetched a map since.
        static func waitForWholeGroup(_ cluster: ClusterHarness, master: String) async throws {
            let whole = await cluster.eventually(within: 30) {
                (try? await MasterClient(baseURL: master, transport: ClusterHarness.transport).snapshot())?.groups.first.map {
                    $0.state == .healthy && $0.members.filter { $0.status == .readWrite }.count == 3
                } ?? false
            }
            let snapshot = try? await MasterClient(baseURL: master, transport: ClusterHarness.transport).snapshot()
            #expect(
                whole,
                """
                members: \(snapshot?.groups.first?.members.map { "\($0.id) \($0.status.rawValue)" } ?? [])
                \(cluster.roleLogs(["master", "master1", "master2", "cs1", "cs2", "cs3"]))
                """)
            try await Task.sleep(for: .milliseconds(1200))
        }

        @Test func anUploadBegunThroughOneMetaserverFinishesThroughAnother() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let masterURL = try Self.startGroup(cluster)
            // Two metaservers on one data directory: one SQLite database, as on one host.
            let (metaPorts, metas) = try Self.startTwoMetaservers(cluster, master: masterURL, storage: ["--data", cluster.root + "/meta"])
            let port = ClusterHarness.freePort()
            try cluster.start(
                "imageserver",
                ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", metaPorts.map { "http://127.0.0.1:\($0)" }.joined(separator: ",")])
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(port)", transport: .plain)
            #expect(await cluster.eventually(within: 30) { (try? await client.send(.GET, "/readyz"))?.status == 200 }, "\(cluster.log("imageserver"))")
            // Both report to the master.
            let both = await cluster.eventually(within: 10) { (try? await MasterClient(baseURL: masterURL, transport: ClusterHarness.transport).snapshot())?.metaservers?.count == 2 }
            #expect(both, "\(cluster.roleLogs(["meta1", "meta2", "imageserver"]))")

            let whole = TestBytes.random(2_000_000, seed: 7)
            #expect(try await client.send(.POST, "/v2/fail/app/blobs/uploads/?digest=\(Digest.of(whole))", body: ByteBuffer(bytes: whole)).status == 201)
            // A chunked upload: its first part through the first metaserver…
            let data = TestBytes.random(6_000_000, seed: 5)
            let start = try await client.send(.POST, "/v2/fail/app/blobs/uploads/")
            #expect(start.status == 202)
            let location = try #require(start.headers.first(name: "Location"))
            let first = try await client.send(.PATCH, location, body: ByteBuffer(bytes: data[0..<3_000_000]), headers: [("Content-Range", "0-2999999")])
            #expect(first.status == 202, "\(String(buffer: first.body))")

            // …then that metaserver dies; the rest goes through the other.
            kill(metas[0].processIdentifier, SIGKILL)
            let next = first.headers.first(name: "Location") ?? location
            let second = try await client.send(.PATCH, next, body: ByteBuffer(bytes: data[3_000_000...]), headers: [("Content-Range", "3000000-5999999")])
            #expect(second.status == 202, "\(String(buffer: second.body))\n\(cluster.log("imageserver"))")
            let last = second.headers.first(name: "Location") ?? next
            let finish = try await client.send(.PUT, last + (last.contains("?") ? "&" : "?") + "digest=\(Digest.of(data))")
            #expect(finish.status == 201, "\(String(buffer: finish.body))")

            // Both blobs read back whole, through the surviving metaserver.
            for blob in [whole, data] {
                let pulled = try await client.send(.GET, "/v2/fail/app/blobs/\(Digest.of(blob))")
                #expect(pulled.status == 200 && Digest.of(Array(pulled.body.readableBytesView)) == Digest.of(blob))
            }
            #expect(try await client.send(.GET, "/readyz").status == 200)
            // The master shows which one is gone.
            let down = await cluster.eventually(within: 6) {
                let metas = (try? await MasterClient(baseURL: masterURL, transport: ClusterHarness.transport).snapshot())?.metaservers ?? []
                return metas.map(\.status).sorted { $0.rawValue < $1.rawValue } == [.down, .up]
            }
            #expect(down)
        }

        /// Pushes blobs of `size` bytes through `registry` until `deadline`; each blob's digest
        /// with the status its push got, and when.
        static func pushLoad(
            _ registry: String, seed: UInt8, size: Int, until deadline: ContinuousClock.Instant
        ) async -> [(repository: String, digest: Digest, status: UInt, at: ContinuousClock.Instant)] {
            let client = ServiceClient(baseURL: registry, timeout: .seconds(20), transport: .plain)
            var outcomes: [(String, Digest, UInt, ContinuousClock.Instant)] = []
            var n = 0
            while ContinuousClock.now < deadline, n < 2000 {
                n += 1
                let blob = TestBytes.random(size, seed: Int(seed) &* 1000 &+ n)
                let digest = Digest.of(blob)
                let reply = try? await client.send(.POST, "/v2/load/s\(seed)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: blob))
                outcomes.append(("load/s\(seed)", digest, UInt(reply?.status ?? 0), .now))
            }
            return outcomes
        }

        /// The pushes whose blob does not pull back whole, asking `registries` in turn.
        static func lostBlobs(
            _ pushes: [(repository: String, digest: Digest, status: UInt, at: ContinuousClock.Instant)], through registries: [String]
        ) async throws -> [Digest] {
            var lost: [Digest] = []
            for (n, push) in pushes.enumerated() {
                let client = ServiceClient(baseURL: registries[n % registries.count], timeout: .seconds(20), transport: .plain)
                let pulled = try await client.send(.GET, "/v2/\(push.repository)/blobs/\(push.digest)")
                if pulled.status != 200 || Digest.of(Array(pulled.body.readableBytesView)) != push.digest { lost.append(push.digest) }
            }
            return lost
        }

        @Test func aMetaserverKilledUnderPushLoadThroughTwoImageserversLosesNothing() async throws {
            let database = try await PostgresTestServer.freshDatabase()
            let server = try #require(await PostgresTestServer.sharedServer())
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let masterURL = try Self.startGroup(cluster)
            // Two metaservers on one PostgreSQL database; the password only in their environment.
            let (metaPorts, metas) = try Self.startTwoMetaservers(
                cluster, master: masterURL, storage: ["--database", database.replacingOccurrences(of: ":\(server.password)@", with: "@")],
                environment: ["PGPASSWORD": server.password])
            // Two imageservers, each preferring a different metaserver first.
            let metaURLs = metaPorts.map { "http://127.0.0.1:\($0)" }
            var registries: [String] = []
            for (i, order) in [metaURLs, metaURLs.reversed()].enumerated() {
                let port = ClusterHarness.freePort()
                try cluster.start("imageserver\(i + 1)", ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", order.joined(separator: ",")])
                registries.append("http://127.0.0.1:\(port)")
            }
            for registry in registries {
                let ready = await cluster.eventually(within: 30) { (try? await ServiceClient(baseURL: registry, transport: .plain).send(.GET, "/readyz"))?.status == 200 }
                #expect(ready, "\(cluster.log("meta1"))\n\(cluster.log("imageserver1"))")
            }
            #expect(await cluster.eventually(within: 10) { (try? await MasterClient(baseURL: masterURL, transport: ClusterHarness.transport).snapshot())?.metaservers?.count == 2 })
            try await Self.waitForWholeGroup(cluster, master: masterURL)

            // Push through both imageservers for 8 s; kill -9 the first metaserver 3 s in.
            let deadline = ContinuousClock.now + .seconds(8)
            let (first, second) = (registries[0], registries[1])
            async let one = Self.pushLoad(first, seed: 3, size: 300_000, until: deadline)
            async let two = Self.pushLoad(second, seed: 5, size: 300_000, until: deadline)
            try await Task.sleep(for: .seconds(3))
            let killedAt = ContinuousClock.now
            kill(metas[0].processIdentifier, SIGKILL)
            let outcomes = await one + two

            let acknowledged = outcomes.filter { $0.status == 201 }
            let refused = outcomes.filter { $0.status != 201 }
            let afterKill = acknowledged.filter { $0.at > killedAt + .seconds(1) }
            print("metaserver failover under load: \(outcomes.count) pushes, \(acknowledged.count) acknowledged, \(afterKill.count) more than 1 s after the kill, refused: \(refused.map(\.status))")
            #expect(acknowledged.count > 20)
            // Pushes go on through the surviving metaserver; a refusal is a clear 5xx, never a 4xx.
            #expect(afterKill.count > 5, "\(cluster.log("imageserver1"))")
            #expect(refused.allSatisfy { $0.status >= 500 }, "\(refused.map(\.status))")
            // Every acknowledged blob pulls whole, through either imageserver.
            let lost = try await Self.lostBlobs(acknowledged, through: registries)
            #expect(lost.isEmpty, "acknowledged but not pulled back: \(lost)")
        }

        @Test func aDatabaseOutageGivesClear503sAndPushesComeBackWithTheDatabase() async throws {
            let database = try await PostgresTestServer.startPrivate()
            defer { database.stop() }
            let url = try await database.createDatabase()
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let masterURL = try Self.startGroup(cluster)
            let metaPort = ClusterHarness.freePort()
            try cluster.start("meta", ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--database", url, "--master", masterURL])
            let port = ClusterHarness.freePort()
            try cluster.start("imageserver", ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", "http://127.0.0.1:\(metaPort)"])
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(port)", timeout: .seconds(30), transport: .plain)
            let meta = ServiceClient(baseURL: "http://127.0.0.1:\(metaPort)", transport: .plain)
            #expect(await cluster.eventually(within: 30) { (try? await client.send(.GET, "/readyz"))?.status == 200 }, "\(cluster.log("meta"))")
            try await Self.waitForWholeGroup(cluster, master: masterURL)
            func blob(_ n: Int) -> [UInt8] { TestBytes.random(400_000, seed: n) }
            func push(_ data: [UInt8]) async throws -> Int {
                try await client.send(.POST, "/v2/outage/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data)).status
            }
            #expect(try await push(blob(1)) == 201)

            // The database goes away: a push fails, within seconds, with a 503 that says why.
            try await database.stopServer()
            let started = ContinuousClock.now
            let refused = try await client.send(.POST, "/v2/outage/app/blobs/uploads/?digest=\(Digest.of(blob(2)))", body: ByteBuffer(bytes: blob(2)))
            #expect(refused.status == 503, "\(String(buffer: refused.body))")
            #expect(String(buffer: refused.body).contains("metadata unavailable"))
            #expect(ContinuousClock.now - started < .seconds(15))
            #expect(try await client.send(.HEAD, "/v2/outage/app/blobs/\(Digest.of(blob(1)))").status == 503)
            #expect(await cluster.eventually(within: 10) { (try? await meta.send(.GET, "/readyz"))?.status == 503 })

            // It comes back: so do pushes, with nothing half-written from the outage.
            try await database.startServer()
            #expect(await cluster.eventually(within: 20) { (try? await push(blob(3))) == 201 }, "\(cluster.log("meta"))")
            #expect(try await client.send(.HEAD, "/v2/outage/app/blobs/\(Digest.of(blob(2)))").status == 404)
            for n in [1, 3] {
                let pulled = try await client.send(.GET, "/v2/outage/app/blobs/\(Digest.of(blob(n)))")
                #expect(pulled.status == 200 && Digest.of(Array(pulled.body.readableBytesView)) == Digest.of(blob(n)))
            }
            #expect(await cluster.eventually(within: 5) { (try? await meta.send(.GET, "/readyz"))?.status == 200 })
        }

        /// An HTTP proxy in front of a metaserver that forwards the first upload completion and
        /// then closes the connection without its answer: a commit whose answer is lost.
        static let answerLosingProxy = #"""
            import http.client, http.server, sys
            listen, upstream = int(sys.argv[1]), int(sys.argv[2])
            dropped = []
            class Proxy(http.server.BaseHTTPRequestHandler):
                protocol_version = "HTTP/1.1"
                def forward(self):
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                    conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
                    conn.request(self.command, self.path, body, {k: v for k, v in self.headers.items() if k.lower() != "host"})
                    reply = conn.getresponse(); data = reply.read(); conn.close()
                    if self.path.split("?")[0].endswith("/complete") and not dropped:
                        dropped.append(self.path); print("dropped the answer to", self.path, reply.status, flush=True)
                        self.close_connection = True; return
                    self.send_response(reply.status)
                    for k, v in reply.getheaders():
                        if k.lower() not in ("content-length", "connection", "transfer-encoding"): self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data))); self.end_headers(); self.wfile.write(data)
                do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = forward
                def log_message(self, *args): pass
            http.server.ThreadingHTTPServer(("127.0.0.1", listen), Proxy).serve_forever()
            """#

        @Test func aCommitWhoseAnswerIsLostIsNotUndoneByTheRetryOnAnotherMetaserver() async throws {
            let database = try await PostgresTestServer.freshDatabase()
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let masterURL = try Self.startGroup(cluster)
            let (metaPorts, _) = try Self.startTwoMetaservers(cluster, master: masterURL, storage: ["--database", database])
            let script = cluster.root + "/proxy.py"
            try Self.answerLosingProxy.write(toFile: script, atomically: true, encoding: .utf8)
            let proxyPort = ClusterHarness.freePort()
            try cluster.start("proxy", [script, String(proxyPort), String(metaPorts[0])], program: "/usr/bin/python3")
            // The imageserver must find the first metaserver (through the proxy) answering, or it
            // settles on the second.
            let proxied = ServiceClient(baseURL: "http://127.0.0.1:\(proxyPort)", transport: .plain)
            #expect(await cluster.eventually(within: 20) { (try? await proxied.send(.GET, "/readyz"))?.status == 200 }, "\(cluster.log("proxy"))")
            let port = ClusterHarness.freePort()
            try cluster.start(
                "imageserver",
                ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", "http://127.0.0.1:\(proxyPort),http://127.0.0.1:\(metaPorts[1])"])
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(port)", timeout: .seconds(30), transport: .plain)
            #expect(await cluster.eventually(within: 30) { (try? await client.send(.GET, "/readyz"))?.status == 200 }, "\(cluster.log("proxy"))")
            try await Self.waitForWholeGroup(cluster, master: masterURL)

            // A chunked upload whose completion commits through the first metaserver, whose
            // answer never comes back; the imageserver asks the second, which finds it done.
            let data = TestBytes.random(3_000_000, seed: 11)
            let start = try await client.send(.POST, "/v2/lost/app/blobs/uploads/")
            #expect(start.status == 202)
            let location = try #require(start.headers.first(name: "Location"))
            let patched = try await client.send(.PATCH, location, body: ByteBuffer(bytes: data[..<2_000_000]), headers: [("Content-Range", "0-1999999")])
            #expect(patched.status == 202)
            // The last part comes with the PUT: chunks this very request wrote, which it must not drop.
            let next = patched.headers.first(name: "Location") ?? location
            let finish = try await client.send(.PUT, next + (next.contains("?") ? "&" : "?") + "digest=\(Digest.of(data))", body: ByteBuffer(bytes: data[2_000_000...]))
            #expect(finish.status == 201, "\(String(buffer: finish.body))\n\(cluster.log("imageserver"))")
            #expect(cluster.log("proxy").contains("dropped the answer to /v1/uploads/"), "\(cluster.log("proxy"))")
            #expect(cluster.log("imageserver").contains("was committed by an earlier attempt whose answer was lost"))
            // Its chunks were kept: it pulls whole now and after any background clean-up.
            for _ in 0..<2 {
                let pulled = try await client.send(.GET, "/v2/lost/app/blobs/\(Digest.of(data))")
                #expect(pulled.status == 200 && Digest.of(Array(pulled.body.readableBytesView)) == Digest.of(data))
                try await Task.sleep(for: .seconds(2))
            }
        }

        @Test func aBadOrUnreachableDatabaseStopsTheMetaserverWithTheReasonAndNoPassword() async throws {
            let speedy = ClusterHarness.binDirectory + "/speedy"
            for (url, reason) in [
                ("mysql://a@h/d", "the database must be a URL postgresql://"), ("postgresql://a@h/d?sslmode=maybe", "sslmode must be"),
                ("postgresql://a@h/d?pool=0", "pool must be"), ("postgresql://h/d", "names no user"),
            ] {
                let result = try await ClusterHarness.run(speedy, ["metaserver", "--insecure", "--database", url])
                #expect(result.status == 2 && result.output.contains(reason), "\(url): \(result.status) \(result.output)")
            }
            let started = ContinuousClock.now
            let result = try await ClusterHarness.run(
                speedy, ["metaserver", "--insecure", "--listen", "127.0.0.1:\(ClusterHarness.freePort())", "--database", "postgresql://speedy:pw-in-url@127.0.0.1:1/meta"],
                environment: ["PGPASSWORD": "pw-in-env"])
            #expect(result.status == 1, "\(result.output)")
            #expect(result.output.contains("cannot open postgresql://speedy@127.0.0.1:1/meta: no connection to PostgreSQL"), "\(result.output)")
            #expect(!result.output.contains("pw-in-url") && !result.output.contains("pw-in-env"))
            #expect(ContinuousClock.now - started < .seconds(15))
        }
    }
}

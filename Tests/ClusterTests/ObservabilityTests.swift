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
    /// What operators watch: `/metrics` on every role, the roles on the master's map, readiness,
    /// and the request log.
    @Suite("Cluster in view", .serialized)
    struct ObservabilityTests {
        /// Prometheus text: series (name with labels) to value.
        func scrape(_ baseURL: String, secret: Bool = true) async throws -> [String: Double] {
            let client = ServiceClient(baseURL: baseURL, transport: secret ? ClusterHarness.transport : .plain)
            let reply = try await client.send(.GET, "/metrics")
            #expect(reply.status == 200, "\(baseURL)/metrics: \(reply.status)")
            var series: [String: Double] = [:]
            for line in String(buffer: reply.body).split(separator: "\n") where !line.hasPrefix("#") {
                guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
                series[String(line[..<space])] = value
            }
            return series
        }

        func delta(_ after: [String: Double], _ before: [String: Double], _ key: String) -> Double {
            (after[key] ?? 0) - (before[key] ?? 0)
        }

        /// `speedy up` on a free run of ports: the master on `base`, the metaserver on `base + 1`,
        /// the registry on `base + 2`, chunkservers from `base + 3`.
        func startSpeedyUp(_ cluster: ClusterHarness) throws -> (base: Int, process: Process) {
            let base = TestPorts.freeRun(count: 8)
            let up = try cluster.start(
                "up",
                [
                    "up", "--data", cluster.root + "/up", "--master-port", String(base), "--meta-port", String(base + 1),
                    "--registry-port", String(base + 2), "--chunkserver-port", String(base + 3),
                ])
            return (base, up)
        }

        func random(_ count: Int) -> [UInt8] {
            TestBytes.random(count, seed: Int.random(in: .min ... .max))
        }

        @Test func countersOnEveryRoleMoveByWhatAPushAndAPullDid() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--chunk-size", "1M"])
            let chunkserver = "http://" + registry.chunkservers[0].addr
            let imageBefore = try await scrape(registry.registryURL)
            let chunkBefore = try await scrape(chunkserver)
            let masterBefore = try await scrape(registry.masterURL)

            // 3.5 MiB in one request: four 1 MiB chunks, each written once to each member.
            let data = random(3 * (1 << 20) + (1 << 19))
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let digest = Digest.of(data)
            let push = try await client.send(.POST, "/v2/view/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(push.status == 201, "\(String(buffer: push.body))")
            let pull = try await client.send(.GET, "/v2/view/app/blobs/\(digest)")
            #expect(pull.status == 200 && Digest.of(Array(pull.body.readableBytesView)) == digest)

            let image = try await scrape(registry.registryURL)
            #expect(delta(image, imageBefore, "speedy_imageserver_chunk_writes_total") == 4)
            #expect(delta(image, imageBefore, "speedy_imageserver_chunk_write_bytes_total") == Double(data.count))
            #expect(delta(image, imageBefore, "speedy_imageserver_chunk_reads_total") == 4)
            #expect(delta(image, imageBefore, "speedy_imageserver_chunk_read_failovers_total") == 0)
            let uploads = #"{route="/v2/<name>/blobs/uploads/",method="POST""#
            #expect(delta(image, imageBefore, "speedy_http_requests_total" + uploads + #",status="201"}"#) == 1)
            #expect(delta(image, imageBefore, "speedy_http_request_bytes_total" + uploads + "}") == Double(data.count))
            #expect(delta(image, imageBefore, "speedy_http_response_bytes_total" + #"{route="/v2/<name>/blobs/<digest>",method="GET"}"#) == Double(data.count))
            #expect(image["speedy_http_request_duration_seconds_count" + uploads + #",status="201"}"#] == 1)

            // Every member took the four chunks (chained from the head).
            let chunk = try await scrape(chunkserver)
            #expect(delta(chunk, chunkBefore, "speedy_chunkserver_writes_total") == 4)
            #expect(delta(chunk, chunkBefore, "speedy_chunkserver_write_bytes_total") == Double(data.count))
            #expect(delta(chunk, chunkBefore, "speedy_chunkserver_chunks") == 4)
            #expect((chunk["speedy_chunkserver_fsync_seconds_count"] ?? 0) >= 1)
            #expect(chunk["speedy_chunkserver_disk_total_bytes"].map { $0 > 0 } == true)

            let master = try await scrape(registry.masterURL)
            #expect(delta(master, masterBefore, "speedy_master_file_ids_leased_total") >= 4)
            // Heartbeats come every second or so, and the push and pull can take less.
            let heartbeatsMoved = await cluster.eventually(within: 10) {
                guard let now = try? await scrape(registry.masterURL) else { return false }
                return delta(now, masterBefore, "speedy_master_heartbeats_total") > 0
            }
            #expect(heartbeatsMoved)
            #expect(master[#"speedy_master_groups{state="healthy"}"#] == 1)
            #expect(master[#"speedy_master_server_up{server="cs1",group="1"}"#] == 1)

            // The metaserver timed its database calls.
            let meta = try await scrape(registry.metaURL)
            let calls = meta.filter { $0.key.hasPrefix("speedy_metaserver_database_seconds_count") }
            #expect(calls.values.reduce(0, +) >= 2, "\(meta.keys.filter { $0.hasPrefix("speedy_metaserver") }.sorted())")
            #expect(meta["speedy_metaserver_upload_sessions"] == 0)

            // Every role's /metrics asks for the cluster secret; the probes do not.
            for url in [registry.registryURL, chunkserver, registry.masterURL, registry.metaURL] {
                let open = ServiceClient(baseURL: url, transport: .plain)
                #expect(try await open.send(.GET, "/metrics").status == 401, "\(url)/metrics without the secret")
                #expect(try await open.send(.GET, "/healthz").status == 200, "\(url)/healthz")
                // Readiness may lag a push by a heartbeat (a role waits for the master's map);
                // what matters here is that the probe never asks for the secret.
                #expect(try await open.send(.GET, "/readyz").status != 401, "\(url)/readyz")
                #expect(await cluster.eventually(within: 15) { (try? await open.send(.GET, "/readyz"))?.status == 200 }, "\(url)/readyz")
            }
        }

        @Test func aKilledImageserverShowsDownInStatusWithinFourSeconds() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // The default down timeout, as in production.
            let registry = try await cluster.startRegistry(masterDownAfter: 3)
            let env = ["SPEEDY_MASTER": registry.masterURL]
            struct Roles: Decodable {
                struct Role: Decodable {
                    var id: String
                    var addr: String
                    var status: String
                    var lastHeartbeatAgeMs: Int64
                }
                var imageservers: [Role]
                var metaservers: [Role]
            }
            func roles() async throws -> (Int32, Roles?) {
                let run = try await cluster.chunktool(["status", "--json"], environment: env)
                return (run.status, try? JSONDecoder().decode(Roles.self, from: Data(run.output.utf8)))
            }
            #expect(await cluster.eventually(within: 10) {
                guard let listed = try? await roles().1 else { return false }
                return listed.imageservers.map(\.status) == ["UP"] && listed.metaservers.map(\.status) == ["UP"]
            })
            // A mistaken group is removed through the CLI; one with members is refused with the reason.
            #expect(try await cluster.chunktool(["group", "add", "9"], environment: env).status == 0)
            #expect(try await roles().0 == 1, "an empty group is not healthy")
            let removed = try await cluster.chunktool(["group", "remove", "9"], environment: env)
            #expect(removed.status == 0 && removed.output.contains("group 9 removed"), "\(removed.output)")
            let refused = try await ClusterHarness.run(ClusterHarness.binDirectory + "/chunktool", ["group", "remove", "1"], environment: env)
            #expect(refused.status == 2, "\(refused.output)")
            #expect(refused.output.contains("member") || refused.output.contains("empty"), "\(refused.output)")

            let (status, listed) = try await roles()
            #expect(status == 0)
            #expect(listed?.imageservers.first?.addr == registry.hostPort)
            #expect(listed?.imageservers.first.map { $0.lastHeartbeatAgeMs < 2000 } == true)

            let port = Int(registry.hostPort.split(separator: ":").last!)!
            let pid = try #require(ClusterHarness.pid(listeningOn: port))
            let killed = ContinuousClock.now
            kill(pid, SIGKILL)
            let down = await cluster.eventually(within: 4) { (try? await roles().1)?.imageservers.first?.status == "DOWN" }
            let shown = try? await roles().1?.imageservers.first?.status
            #expect(down, "the imageserver still shows \(String(describing: shown)) \(ContinuousClock.now - killed) after kill -9")
            let (after, afterListed) = try await roles()
            #expect(after == 1, "a role down is a problem for scripts")
            #expect(afterListed?.metaservers.first?.status == "UP")
            let text = try await cluster.chunktool(["status"], environment: env).output
            #expect(text.contains("imageserver") && text.contains("DOWN"), "\(text)")
            let events = try await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).events(limit: 1000).map(\.message)
            #expect(events.contains { $0.contains("imageserver") && $0.contains("is down") }, "\(events)")

            // A role stopped cleanly leaves the map at once rather than show down.
            let metaPort = try #require(URL(string: registry.metaURL)?.port)
            let meta = try #require(ClusterHarness.pid(listeningOn: metaPort))
            kill(meta, SIGTERM)
            let left = await cluster.eventually(within: 3) { (try? await roles().1)?.metaservers.isEmpty == true }
            let statuses = try? await roles().1?.metaservers.map(\.status)
            #expect(left, "\(String(describing: statuses))")
            let later = try await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).events(limit: 1000).map(\.message)
            #expect(later.contains { $0.contains("metaserver") && $0.contains("left the map") }, "\(later)")
        }

        @Test func aPushRightAfterSpeedyUpSaysUpSucceeds() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (base, up) = try startSpeedyUp(cluster)
            let saidUp = await cluster.eventually(within: 60) { cluster.log("up").contains("Speedy is up") }
            #expect(saidUp, "\(cluster.log("up"))")
            // At once, without waiting for anything else: a whole push and a chunked one.
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(base + 2)", transport: .plain)
            let data = random(300_000)
            let push = try await client.send(.POST, "/v2/ready/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data))
            #expect(push.status == 201, "push right after the banner: \(push.status) \(String(buffer: push.body))\n\(cluster.log("up"))")
            for port in [base, base + 1, base + 2, base + 3] {
                #expect(try await ServiceClient(baseURL: "http://127.0.0.1:\(port)", transport: .plain).send(.GET, "/readyz").status == 200)
            }
            // Every replica got the chunk: the banner waited for the last chunkserver to join.
            let verify = try await cluster.chunktool(
                ["verify", "--group", "1", "--master", "http://127.0.0.1:\(base)"],
                environment: ["SPEEDY_CLUSTER_SECRET_FILE": cluster.root + "/up/cluster-secret"])
            #expect(verify.status == 0 && verify.output.contains("1 chunks, 0 missing"), "\(verify.output)")
            kill(up.processIdentifier, SIGTERM)
            await up.exited()
        }

        @Test func aSIGTERMWhileSpeedyUpStartsStopsEveryChild() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (base, up) = try startSpeedyUp(cluster)
            // Once some children run, before the banner.
            #expect(await cluster.eventually(within: 30) { ClusterHarness.pid(listeningOn: base) != nil })
            #expect(!cluster.log("up").contains("Speedy is up"))
            kill(up.processIdentifier, SIGTERM)
            await up.exited()
            #expect(up.terminationStatus == 0, "\(cluster.log("up"))")
            #expect(cluster.log("up").contains("stopping"))
            for port in base..<(base + 6) { #expect(ClusterHarness.pid(listeningOn: port) == nil, "port \(port) still served") }
        }

        @Test func anImageserverWithoutAWritableGroupIsNotReadyAndWaitsBeforeAnswering507() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster()
            let metaPort = ClusterHarness.freePort()
            try cluster.start("meta", ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--data", cluster.root + "/meta", "--master", masterURL])
            let port = ClusterHarness.freePort()
            try cluster.start(
                "imageserver", ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", "http://127.0.0.1:\(metaPort)"])
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(port)", transport: .plain)
            #expect(await cluster.eventually(within: 20) { (try? await client.send(.GET, "/healthz"))?.status == 200 })
            let ready = try await client.send(.GET, "/readyz")
            #expect(ready.status == 503)
            #expect(String(buffer: ready.body).contains("no group takes writes"), "\(String(buffer: ready.body))")

            // No chunkserver will come: the push waits for a writable group, then gets 507.
            let started = ContinuousClock.now
            let data = random(1000)
            let push = try await client.send(.POST, "/v2/wait/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data))
            let waited = ContinuousClock.now - started
            #expect(push.status == 507)
            #expect(waited >= .milliseconds(4500), "answered after \(waited)")

            // A group that comes up while a push waits takes it.
            let pending = Task { try await client.send(.POST, "/v2/wait/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data)).status }
            for i in 1...3 { _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "late\(i)") }
            let status = try await pending.value
            // The group forms within the wait when the machine is not too loaded; either way no 5xx other than 507.
            #expect(status == 201 || status == 507, "\(status)")
            #expect(await cluster.eventually(within: 20) { (try? await client.send(.GET, "/readyz"))?.status == 200 })
            // Ready means a push goes through.
            let another = random(2000)
            #expect(try await client.send(.POST, "/v2/wait/app/blobs/uploads/?digest=\(Digest.of(another))", body: ByteBuffer(bytes: another)).status == 201)
        }

        @Test func anImageserverIsReadyOnlyWhileItsMetaserverAnswers() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let masterURL = try MetaserverFailoverTests.startGroup(cluster)
            let metaPort = ClusterHarness.freePort()
            let metaArguments = ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--data", cluster.root + "/meta", "--master", masterURL]
            let meta = try cluster.start("meta", metaArguments)
            let port = ClusterHarness.freePort()
            try cluster.start("imageserver", ["imageserver", "--listen", "127.0.0.1:\(port)", "--master", masterURL, "--meta", "http://127.0.0.1:\(metaPort)"])
            let client = ServiceClient(baseURL: "http://127.0.0.1:\(port)", transport: .plain)
            try await MetaserverFailoverTests.waitForWholeGroup(cluster, master: masterURL)
            #expect(await cluster.eventually(within: 20) { (try? await client.send(.GET, "/readyz"))?.status == 200 })
            let data = random(5000)
            func push() async throws -> Int { try await client.send(.POST, "/v2/ready/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data)).status }
            #expect(try await push() == 201)

            // The metaserver goes: the imageserver stops saying it is ready, with the reason, and pushes fail with 503.
            kill(meta.processIdentifier, SIGKILL)
            #expect(await cluster.eventually(within: 5) { (try? await client.send(.GET, "/readyz"))?.status == 503 })
            let notReady = try await client.send(.GET, "/readyz")
            #expect(String(buffer: notReady.body).contains("metaserver"), "\(String(buffer: notReady.body))")
            #expect(try await push() == 503)

            // It comes back: ready again, and the push goes through.
            try cluster.start("meta-again", metaArguments)
            #expect(await cluster.eventually(within: 20) { (try? await client.send(.GET, "/readyz"))?.status == 200 })
            #expect(try await push() == 201)
        }

        @Test func requestsAreLoggedOneLineEachAsJSONWhenAsked() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverEnvironment: ["SPEEDY_LOG_FORMAT": "json"])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            _ = try await client.send(.GET, "/v2/nothing/here/manifests/v1")
            var found: [String: Any]?
            _ = await cluster.eventually(within: 5) {
                for line in cluster.log("imageserver").split(separator: "\n") {
                    guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else { continue }
                    if object["path"] as? String == "/v2/nothing/here/manifests/v1" { found = object }
                }
                return found != nil
            }
            let line = try #require(found, "no JSON request line in:\n\(cluster.log("imageserver"))")
            #expect(line["method"] as? String == "GET")
            #expect(line["status"] as? String == "404")
            #expect(line["client"] as? String == "127.0.0.1")
            #expect(line["level"] as? String == "info")
            #expect((line["duration_ms"] as? String).flatMap(Double.init) != nil)
            // Every line of the log is JSON.
            let lines = cluster.log("imageserver").split(separator: "\n")
            #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, "\(lines.prefix(5))")
        }
    
        @Test func theMasterRefusesMalformedRoleAndJobReportsAndKeepsServing() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster()
            let master = ServiceClient(baseURL: masterURL, transport: ClusterHarness.transport)
            #expect(await cluster.eventually(within: 20) { await MasterClient(baseURL: masterURL, transport: ClusterHarness.transport).isHealthy() })
            func post(_ path: String, _ json: String, headers: [(String, String)] = []) async throws -> Int {
                try await master.send(.POST, path, body: ByteBuffer(string: json), headers: [("Content-Type", "application/json")] + headers).status
            }
            let long = String(repeating: "x", count: 300)
            let role = #"{"role":"imageserver","id":"ID","addr":"ADDR","version":"0.12.0","uptimeMs":1,"requests":0,"clientErrors":0,"serverErrors":0,"bytesIn":0,"bytesOut":0,"openUploads":0,"residentBytes":0,"ready":true}"#
            #expect(try await post("/v1/roles/heartbeat", role.replacingOccurrences(of: "ID", with: "ok").replacingOccurrences(of: "ADDR", with: "10.0.0.1:6788")) == 200)
            #expect(try await post("/v1/roles/heartbeat", role.replacingOccurrences(of: "ID", with: long).replacingOccurrences(of: "ADDR", with: "10.0.0.1:6788")) == 400)
            #expect(try await post("/v1/roles/heartbeat", role.replacingOccurrences(of: "ID", with: "").replacingOccurrences(of: "ADDR", with: "10.0.0.1:6788")) == 400)
            #expect(try await post("/v1/roles/heartbeat", role.replacingOccurrences(of: "ID", with: "a").replacingOccurrences(of: "ADDR", with: "nowhere")) == 400)
            #expect(try await post("/v1/roles/heartbeat", role.replacingOccurrences(of: "imageserver", with: "evil").replacingOccurrences(of: "ID", with: "a").replacingOccurrences(of: "ADDR", with: "10.0.0.1:1")) == 400)
            #expect(try await post("/v1/roles/heartbeat", role.replacingOccurrences(of: #""uptimeMs":1"#, with: #""uptimeMs":-1"#).replacingOccurrences(of: "ID", with: "a").replacingOccurrences(of: "ADDR", with: "10.0.0.1:1")) == 400)
            #expect(try await post("/v1/roles/heartbeat", "{nope") == 400)
            let job = #"{"id":"ID","kind":"KIND","target":"group 1","state":"running","done":DONE,"total":10,"bytes":0}"#
            func jobJSON(id: String = "j1", kind: String = "verify", done: String = "1") -> String {
                job.replacingOccurrences(of: "ID", with: id).replacingOccurrences(of: "KIND", with: kind).replacingOccurrences(of: "DONE", with: done)
            }
            #expect(try await post("/v1/jobs", jobJSON(), headers: [("X-Speedy-Actor", "mallory@h (script)")]) == 200)
            #expect(try await post("/v1/jobs", jobJSON(kind: "rm-rf")) == 400)
            #expect(try await post("/v1/jobs", jobJSON(id: long)) == 400)
            #expect(try await post("/v1/jobs", jobJSON(done: "-5")) == 400)
            #expect(try await post("/v1/jobs", jobJSON(done: "99999999999999999999999")) == 400)
            #expect(try await master.send(.DELETE, "/v1/groups/abc").status == 400)
            #expect(try await master.send(.DELETE, "/v1/groups/99999999999").status == 400)
            #expect(try await master.send(.DELETE, "/v1/groups/42").status == 404)
            // Without the secret, none of it is taken.
            #expect(try await ServiceClient(baseURL: masterURL, transport: .plain).send(.POST, "/v1/jobs", body: ByteBuffer(string: jobJSON(id: "j2"))).status == 401)
            let snapshot = try await MasterClient(baseURL: masterURL, transport: ClusterHarness.transport).snapshot()
            #expect(snapshot.imageservers?.map(\.id) == ["ok"])
            #expect(snapshot.jobs?.map(\.report.id) == ["j1"])
            #expect(snapshot.jobs?.first?.actor == "mallory@h (script)")
        }
}
}

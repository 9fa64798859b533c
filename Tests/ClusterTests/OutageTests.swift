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
    /// What clients see while a role is gone: a pull needs no master, a blob that cannot be read
    /// is a 503 and never a broken 200, and a push waits out a metaserver restart.
    @Suite("Pulls and pushes through outages", .serialized)
    struct OutageTests {
        /// `count` bytes that differ with `seed`.
        static func payload(_ count: Int, seed: Int) -> [UInt8] {
            TestBytes.random(count, seed: seed)
        }

        /// Pushes a blob of `count` bytes whole to `repository`; its digest.
        static func push(_ registry: String, _ repository: String, count: Int, seed: Int) async throws -> Digest {
            let data = payload(count, seed: seed)
            let digest = Digest.of(data)
            let reply = try await ServiceClient(baseURL: registry, transport: .plain).send(
                .POST, "/v2/\(repository)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(reply.status == 201, "\(String(buffer: reply.body))")
            return digest
        }

        /// The imageserver's last map says every member is down, and the master it would ask is
        /// frozen, while all three chunkservers serve: what a master takeover can look like to an
        /// imageserver. The pull must not care.
        @Test func aPullNeedsNoMasterWhenItsLastMapShowsEveryMemberDown() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--chunk-size", "64K"])
            let digest = try await Self.push(registry.registryURL, "outage/app", count: 300_000, seed: 1)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let masterPort = try #require(URL(string: registry.masterURL)?.port)
            let masterPid = try #require(ClusterHarness.pid(listeningOn: masterPort))

            for server in registry.chunkservers { kill(server.process.processIdentifier, SIGSTOP) }
            let allDown = await cluster.eventually(within: 15) {
                (try? await master.snapshot())?.groups.first?.members.allSatisfy { $0.status == .down } == true
            }
            #expect(allDown, "\(cluster.log("master"))")
            // The imageserver refreshes its map every second: let it take this one, then freeze
            // the master so that the map stays, and bring the chunkservers back.
            try await Task.sleep(for: .seconds(2))
            kill(masterPid, SIGSTOP)
            defer { kill(masterPid, SIGCONT) }
            for server in registry.chunkservers { kill(server.process.processIdentifier, SIGCONT) }

            let started = ContinuousClock.now
            let pulled = try await ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: .plain).send(
                .GET, "/v2/outage/app/blobs/\(digest)")
            #expect(pulled.status == 200, "\(String(buffer: pulled.body))\n\(cluster.log("imageserver"))")
            #expect(Digest.of(Array(pulled.body.readableBytesView)) == digest)
            #expect(ContinuousClock.now - started < .seconds(10))
        }

        /// Every member gone: the GET is answered 503 with Retry-After before a status line
        /// promising bytes goes out; HEAD, which needs only the record, still answers.
        @Test func aBlobNoMemberCanServeIsA503NotABrokenBody() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--chunk-size", "64K"])
            let digest = try await Self.push(registry.registryURL, "outage/app", count: 200_000, seed: 2)
            for server in registry.chunkservers {
                kill(server.process.processIdentifier, SIGKILL)
                await server.process.exited()
            }
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: .plain)
            let pulled = try await client.send(.GET, "/v2/outage/app/blobs/\(digest)")
            #expect(pulled.status == 503, "\(pulled.status) \(String(buffer: pulled.body))")
            #expect(pulled.headers.first(name: "Retry-After") != nil)
            #expect(errorCode(pulled.body) == "BLOB_UNKNOWN")
            // Anyone may ask: the answer names no chunkserver; the imageserver's log has them.
            #expect(!String(buffer: pulled.body).contains("127.0.0.1"), "\(String(buffer: pulled.body))")
            #expect(cluster.log("imageserver").contains(registry.chunkservers[0].addr))
            let ranged = try await client.send(.GET, "/v2/outage/app/blobs/\(digest)", headers: [("Range", "bytes=70000-80000")])
            #expect(ranged.status == 503)
            #expect(try await client.send(.HEAD, "/v2/outage/app/blobs/\(digest)").status == 200)
        }

        /// A chunk in the middle of a blob gone from every member: the first bytes go out with a
        /// `200`, and the connection ends short of the `Content-Length`, which every client reads
        /// as a failed transfer (never as a whole blob).
        @Test func aChunkLostOnEveryMemberMidBlobCutsTheTransferShort() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--chunk-size", "64K"])
            let size = 300_000
            let digest = try await Self.push(registry.registryURL, "outage/app", count: size, seed: 3)
            let record = try #require(try await MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport).blob(digest, in: "outage/app"))
            #expect(record.chunks.count == 5)
            let lost = record.chunks[2]
            for server in registry.chunkservers {
                try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).delete(lost.key, ifCRC: lost.crc)
            }
            let outcome: String
            do {
                let pulled = try await ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: .plain).send(
                    .GET, "/v2/outage/app/blobs/\(digest)")
                outcome = "status \(pulled.status), \(pulled.body.readableBytes) bytes"
                #expect(pulled.status != 200 || pulled.body.readableBytes < size, "a clean end without the blob: \(outcome)")
            } catch {
                // The client saw the connection end before the Content-Length: what must happen.
                outcome = "failed: \(error)"
            }
            print("a GET whose third chunk is gone from every member: \(outcome)")
            #expect(cluster.log("imageserver").contains("unreadable"))
        }

        /// The registry's `/readyz` answers anyone: with its metaserver gone it says it is not
        /// ready, and names no internal address.
        @Test func aRegistryWithoutItsMetaserverIsNotReadyAndNamesNoInternalAddress() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let metaPort = try #require(URL(string: registry.metaURL)?.port)
            kill(try #require(ClusterHarness.pid(listeningOn: metaPort)), SIGKILL)
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            var answer: (status: UInt, body: String)?
            let notReady = await cluster.eventually(within: 10) {
                guard let reply = try? await client.send(.GET, "/readyz") else { return false }
                answer = (UInt(reply.status), String(buffer: reply.body))
                // The probe answers its last check and starts the next: wait for the one that found the metaserver gone.
                return reply.status == 503 && String(buffer: reply.body).contains("metaserver")
            }
            #expect(notReady, "\(String(describing: answer))")
            #expect(answer?.body.contains(String(metaPort)) == false, "\(String(describing: answer))")
        }

        /// `speedy up` restarts a metaserver killed under push load; pushes meanwhile wait for it
        /// (a bounded time) rather than fail, and every acknowledged blob pulls back at once.
        @Test func aMetaserverKilledUnderSpeedyUpCostsPushesAPauseNotAnError() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let base = TestPorts.freeRun(count: 8)
            let up = try cluster.start(
                "up",
                [
                    "up", "--data", cluster.root + "/up", "--master-port", String(base), "--meta-port", String(base + 1),
                    "--registry-port", String(base + 2), "--chunkserver-port", String(base + 3),
                ])
            defer { up.stop() }
            #expect(await cluster.eventually(within: 60) { cluster.log("up").contains("Speedy is up") }, "\(cluster.log("up"))")
            let registry = "http://127.0.0.1:\(base + 2)"

            // Three clients, 15 pushes each of 1–5 MB (one or two 4 MiB chunks); the metaserver
            // is killed once 15 are acknowledged.
            let log = PushLog()
            async let load: Void = withTaskGroup(of: Void.self) { group in
                for client in 0..<3 {
                    group.addTask {
                        let http = ServiceClient(baseURL: registry, timeout: .seconds(60), transport: .plain)
                        for n in 0..<15 {
                            let data = Self.payload(1_000_000 + (n * 3 + client) * 97_000, seed: client * 100 + n)
                            let digest = Digest.of(data)
                            let began = ContinuousClock.now
                            let reply = try? await http.send(.POST, "/v2/up/c\(client)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
                            await log.record("up/c\(client)", digest, status: UInt(reply?.status ?? 0), began: began)
                        }
                    }
                }
            }
            #expect(await cluster.eventually(within: 60) { await log.acknowledged.count >= 15 })
            let metaPid = try #require(ClusterHarness.pid(listeningOn: base + 1))
            let killedAt = ContinuousClock.now
            kill(metaPid, SIGKILL)
            await load

            let outcomes = await log.outcomes
            let refused = outcomes.filter { $0.status != 201 }
            // At most the pushes under way at the kill may fail: one per client.
            let inFlight = refused.filter { $0.began <= killedAt }
            let longest = outcomes.filter { $0.began > killedAt }.map(\.took).max() ?? .zero
            print(
                "metaserver kill -9 under speedy up: \(outcomes.count) pushes, \(outcomes.count - refused.count) acknowledged, "
                    + "refused \(refused.map(\.status)) (\(inFlight.count) of them under way at the kill); the longest push after it took \(longest)")
            #expect(outcomes.count == 45)
            #expect(refused.count == inFlight.count && refused.count <= 3, "\(refused.map(\.status))\n\(cluster.log("up"))")
            #expect(cluster.log("up").contains("metaserver restarted"), "\(cluster.log("up"))")

            // Every acknowledged blob pulls back whole, at once.
            let lost = try await MetaserverFailoverTests.lostBlobs(
                outcomes.filter { $0.status == 201 }.map { ($0.repository, $0.digest, $0.status, $0.began) }, through: [registry])
            #expect(lost.isEmpty, "acknowledged but not pulled back: \(lost)")
        }
    }

    /// Every push of a load: where, what, how it ended, when it began and how long it took.
    actor PushLog {
        struct Outcome {
            var repository: String
            var digest: Digest
            var status: UInt
            var began: ContinuousClock.Instant
            var took: Duration
        }
        private(set) var outcomes: [Outcome] = []

        var acknowledged: [Outcome] { outcomes.filter { $0.status == 201 } }

        func record(_ repository: String, _ digest: Digest, status: UInt, began: ContinuousClock.Instant) {
            outcomes.append(Outcome(repository: repository, digest: digest, status: status, began: began, took: .now - began))
        }
    }
}

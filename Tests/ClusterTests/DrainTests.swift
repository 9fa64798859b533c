import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing

extension ProcessSuites {
    /// Emptying a group while the cluster serves (`chunktool group drain`), then removing it; and
    /// evening out groups (`chunktool rebalance`): docs/recovery.md, "Draining and rebalancing".
    @Suite("Drain", .serialized)
    struct DrainTests {
        typealias LoadLog = RecoveryTests.LoadLog

        /// Pushes blob `n` (``RecoveryTests/payload(_:)``: about 5 MB, two chunks) in one request.
        func push(_ client: ServiceClient, _ n: Int) async -> Digest? {
            let data = RecoveryTests.payload(n)
            let digest = Digest.of(data)
            guard let reply = try? await client.send(.POST, "/v2/load/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data)),
                reply.status == 201
            else { return nil }
            return digest
        }

        /// Nil when blob `digest` pulls back whole, else what went wrong.
        func pull(_ client: ServiceClient, _ digest: Digest) async -> String? {
            do {
                let reply = try await client.send(.GET, "/v2/load/app/blobs/\(digest)", limit: 16 << 20)
                guard reply.status == 200 else { return "\(digest): HTTP \(reply.status)" }
                return Digest.of(Array(reply.body.readableBytesView)) == digest ? nil : "\(digest): wrong bytes"
            } catch {
                return "\(digest): \(error)"
            }
        }

        /// Pushes and pulls until stopped: every acknowledged push, every failed pull.
        func load(_ client: ServiceClient, _ log: LoadLog, from first: Int) -> Task<Void, Never> {
            Task {
                for n in first..<(first + 400) {
                    if await log.stopped { break }
                    if let digest = await push(client, n) { await log.push(n, digest) } else { await log.refused() }
                    if let (_, digest) = await log.any() { await log.pulled(await pull(client, digest)) }
                }
            }
        }

        /// Tags one image naming every blob in `digests`, so garbage collection keeps them.
        func tagImage(_ client: ServiceClient, _ digests: [Digest], sizes: [Digest: Int]) async throws -> Int {
            func descriptor(_ digest: Digest, _ type: String) -> [String: Any] { ["mediaType": type, "digest": digest.description, "size": sizes[digest]!] }
            let manifest: [String: Any] = [
                "schemaVersion": 2, "mediaType": GarbageCollectionTests.ociManifest,
                "config": descriptor(digests[0], "application/vnd.oci.image.config.v1+json"),
                "layers": digests.dropFirst().map { descriptor($0, "application/vnd.oci.image.layer.v1.tar") },
            ]
            let body = try JSONSerialization.data(withJSONObject: manifest, options: [.sortedKeys])
            return try await client.send(
                .PUT, "/v2/load/app/manifests/all", body: ByteBuffer(bytes: body), headers: [("Content-Type", GarbageCollectionTests.ociManifest)]
            ).status
        }

        func json(_ output: String) -> [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]) ?? [:]
        }

        @Test func oneOfThreeGroupsIsDrainedUnderPushAndPullLoadThenRemoved() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // A short hold deadline, so the drain may settle sooner than its default 70 s.
            let registry = try await cluster.startRegistry(groups: 3, imageserverArguments: ["--hold-deadline", "8s"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let meta = MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport)
            let tool = ["--master", registry.masterURL, "--meta", registry.metaURL]
            let log = LoadLog()
            for n in 0..<24 { await log.push(n, try #require(await push(client, n))) }
            #expect(try await meta.groupUsage().contains { $0.group == 3 && $0.chunks > 0 })

            // The drain runs while clients push and pull.
            let traffic = load(client, log, from: 100)
            let drain = Task {
                try await ClusterHarness.run(
                    ClusterHarness.binDirectory + "/chunktool", ["group", "drain", "3", "--json", "--settle", "13s", "--rate", "5"] + tool)
            }
            #expect(await cluster.eventually(within: 10) { (try? await master.snapshot())?.groups.first { $0.id == 3 }?.draining == true })
            // Past the oldest map an imageserver places chunks by: nothing new lands in group 3 from here.
            try await Task.sleep(for: .seconds(6))
            let before = Set(try await ChunkServerClient(baseURL: registry.chunkservers[6].addr, transport: ClusterHarness.transport).listAll(group: 3).keys)
            let drained = try await drain.value
            let report = json(drained.output)
            #expect(drained.status == 0, "\(drained.output)")
            #expect(report["drained"] as? Bool == true)
            let moved = (report["moved"] as? [String: Any])?["chunksMoved"] as? Int ?? 0
            #expect(moved > 0, "\(drained.output)")
            try await Task.sleep(for: .seconds(2))
            await log.stop()
            await traffic.value
            let after = Set(try await ChunkServerClient(baseURL: registry.chunkservers[6].addr, transport: ClusterHarness.transport).listAll(group: 3).keys)
            #expect(after.isSubset(of: before), "chunks written to the draining group: \(after.subtracting(before).sorted())")

            // No pull failed or read wrong bytes, during or after; no blob uses group 3.
            let pushed = await log.pushed
            for (_, digest) in pushed { #expect(await pull(client, digest) == nil) }
            let pullFailures = await log.pullFailures
            #expect(pullFailures.isEmpty, "pulls during the drain failed: \(pullFailures)")
            #expect(pushed.count > 30, "the load pushed during the drain")
            let left = try await meta.chunkReferences(group: 3, after: 0, limit: 10_000).references
            #expect(left.allSatisfy { $0.owner.hasPrefix("moved:") }, "\(left.filter { !$0.owner.hasPrefix("moved:") })")
            #expect(try await meta.groupUsage().allSatisfy { $0.group != 3 })

            // Again: nothing to do.
            let again = try await cluster.chunktool(["group", "drain", "3", "--json", "--settle", "13s"] + tool)
            #expect(again.status == 0, "\(again.output)")
            #expect((json(again.output)["moved"] as? [String: Any])?["chunksMoved"] as? Int == 0)

            // An image keeps every blob; the collection then takes group 3's old copies, and the group goes.
            let sizes = Dictionary(uniqueKeysWithValues: pushed.map { ($0.digest, RecoveryTests.payload($0.n).count) })
            #expect(try await tagImage(client, pushed.map(\.digest), sizes: sizes) == 201)
            let gc = try await cluster.chunktool(["gc", "--grace", "1s", "--chunk-grace", "1s", "--json"] + tool)
            #expect(gc.status == 0, "\(gc.output)")
            for server in registry.chunkservers[6...] {
                #expect(try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).listAll(group: 3).isEmpty, "\(server.name)")
            }
            #expect(await cluster.eventually(within: 10) {
                (try? await master.snapshot())?.groups.first { $0.id == 3 }?.members.allSatisfy { $0.chunkCount == 0 } == true
            })
            let removed = try await ClusterHarness.run(ClusterHarness.binDirectory + "/chunktool", ["group", "remove", "3", "--master", registry.masterURL])
            #expect(removed.status == 0, "\(removed.output)")
            let snapshot = try await master.snapshot()
            #expect(snapshot.groups.map(\.id) == [1, 2])
            let retired = try await master.events(limit: 1000).filter { $0.kind == "server-removed" }.compactMap(\.serverId)
            #expect(Set(retired) == ["g3-cs1", "g3-cs2", "g3-cs3"])
            for (_, digest) in pushed { #expect(await pull(client, digest) == nil) }
            let fsck = try await cluster.chunktool(["fsck", "--json"] + tool)
            #expect(fsck.status == 0, "\(fsck.output)")
            let (pulls, refused) = (await log.pulls, await log.refusedPushes)
            print("drain under load: \(moved) chunks moved in \(report["durationMs"] ?? "?") ms; \(pushed.count) blobs pushed, \(pulls) pulls, \(refused) pushes refused")
            #expect(refused == 0)
        }

        @Test func rebalanceMovesChunksUntilTheGroupsAreWithinTheSpread() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(groups: 2)
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let meta = MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport)
            let tool = ["--master", registry.masterURL, "--meta", registry.metaURL]
            // Everything lands in group 1 while group 2 drains; then group 2 takes chunks again.
            _ = try await master.setDraining(2, true)
            try await Task.sleep(for: .milliseconds(1500))
            var digests: [Digest] = []
            for n in 0..<8 { digests.append(try #require(await push(client, n))) }
            #expect(try await meta.groupUsage().map(\.group) == [1])
            _ = try await master.setDraining(2, false)

            let dry = try await cluster.chunktool(["rebalance", "--dry-run", "--json"] + tool)
            #expect(dry.status == 0, "\(dry.output)")
            #expect((json(dry.output)["plan"] as? [[String: Any]])?.first?["to"] as? Int == 2)
            #expect(try await meta.groupUsage().map(\.group) == [1], "a dry run moves nothing")

            let run = try await cluster.chunktool(["rebalance", "--max-spread", "10%", "--json"] + tool)
            #expect(run.status == 0, "\(run.output)")
            #expect((json(run.output)["spreadAfter"] as? Double ?? 1) <= 0.10, "\(run.output)")
            let usage = try await meta.groupUsage()
            #expect(usage.map(\.group) == [1, 2])
            let (low, high) = (Double(usage.map(\.bytes).min()!), Double(usage.map(\.bytes).max()!))
            #expect((high - low) / high <= 0.10, "\(usage)")
            for digest in digests { #expect(await pull(client, digest) == nil) }
            let again = try await cluster.chunktool(["rebalance", "--json"] + tool)
            #expect(again.status == 0)
            #expect((json(again.output)["plan"] as? [Any])?.isEmpty == true, "\(again.output)")
        }
    }
}

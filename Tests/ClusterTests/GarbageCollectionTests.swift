import AsyncHTTPClient
import Foundation
import GarbageCollection
import Logging
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
import SpeedyTestSupport
#endif

extension ProcessSuites {
    /// Garbage collection and compaction on a live cluster (docs/gc.md): what no image uses goes,
    /// what any image uses stays byte for byte, under racing pushes and across kill -9.
    @Suite("Garbage collection", .serialized)
    struct GarbageCollectionTests {
        static let ociManifest = "application/vnd.oci.image.manifest.v1+json"

        func bytes(_ count: Int, seed: Int) -> [UInt8] {
            TestBytes.random(count, seed: seed)
        }

        /// Pushes a blob in one `POST ?digest=`; the status.
        @discardableResult
        func push(_ client: ServiceClient, _ repo: String, _ data: [UInt8]) async throws -> Int {
            try await client.send(.POST, "/v2/\(repo)/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data)).status
        }

        func manifest(config: [UInt8], layers: [[UInt8]]) -> [UInt8] {
            let object: [String: Any] = [
                "schemaVersion": 2, "mediaType": Self.ociManifest,
                "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest.of(config).description, "size": config.count],
                "layers": layers.map { ["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest.of($0).description, "size": $0.count] },
            ]
            return [UInt8](try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }

        /// Pushes config, layers and manifest under `tag`; the manifest's status and digest.
        func pushImage(_ client: ServiceClient, _ repo: String, tag: String, config: [UInt8], layers: [[UInt8]]) async throws -> (Int, Digest) {
            for blob in [config] + layers {
                let status = try await push(client, repo, blob)
                guard status == 201 else { return (status, Digest.of([])) }
            }
            let body = manifest(config: config, layers: layers)
            let reply = try await client.send(
                .PUT, "/v2/\(repo)/manifests/\(tag)", body: ByteBuffer(bytes: body), headers: [("Content-Type", Self.ociManifest)])
            return (reply.status, Digest.of(body))
        }

        /// Nil when the image tagged `tag` pulls whole: the manifest, then every blob it names with its digest.
        func pullImage(_ client: ServiceClient, _ repo: String, _ tag: String) async -> String? {
            do {
                let reply = try await client.send(.GET, "/v2/\(repo)/manifests/\(tag)", headers: [("Accept", Self.ociManifest)])
                guard reply.status == 200 else { return "\(repo):\(tag) manifest: HTTP \(reply.status)" }
                let object = try JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView)) as? [String: Any]
                let descriptors = [object?["config"] as? [String: Any]].compactMap { $0 } + (object?["layers"] as? [[String: Any]] ?? [])
                for descriptor in descriptors {
                    guard let digest = (descriptor["digest"] as? String).flatMap(Digest.init(parsing:)) else { return "bad descriptor" }
                    let blob = try await client.send(.GET, "/v2/\(repo)/blobs/\(digest)", limit: 128 << 20)
                    guard blob.status == 200 else { return "\(repo):\(tag) blob \(digest): HTTP \(blob.status)" }
                    guard Digest.of(Array(blob.body.readableBytesView)) == digest else { return "\(repo):\(tag) blob \(digest): wrong bytes" }
                }
                return nil
            } catch {
                return "\(repo):\(tag): \(error)"
            }
        }

        /// Bytes of volume files in a chunkserver's data directory.
        func volumeBytes(_ cluster: ClusterHarness, _ server: String) -> Int {
            let dir = cluster.root + "/" + server
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
            return names.filter { $0.hasPrefix("volume-") }.reduce(0) { total, name in
                total + ((try? FileManager.default.attributesOfItem(atPath: dir + "/" + name)[.size] as? Int) ?? 0)
            }
        }

        func gc(_ cluster: ClusterHarness, _ registry: ClusterHarness.Registry, _ arguments: [String]) async throws -> (Int32, GarbageCollectionReport?) {
            let (status, output) = try await cluster.chunktool(["gc", "--master", registry.masterURL, "--meta", registry.metaURL, "--json"] + arguments)
            return (status, try? WireJSON.decoder().decode(GarbageCollectionReport.self, from: Data(output.utf8)))
        }

        @Test func collectionFreesWhatNoImageUsesAndKeepsSharedLayers() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(chunkserverArguments: ["--compact-every", "0"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: ClusterHarness.transport)
            let shared = bytes(5_000_000, seed: 1)
            let onlyOld = bytes(70_000_000, seed: 2)  // enough to seal the first 64 MiB volume
            let onlyNew = bytes(3_000_000, seed: 3)
            let (oldStatus, oldDigest) = try await pushImage(client, "gc/app", tag: "old", config: Array("{\"old\":1}".utf8), layers: [shared, onlyOld])
            let (newStatus, _) = try await pushImage(client, "gc/app", tag: "new", config: Array("{\"new\":1}".utf8), layers: [shared, onlyNew])
            #expect(oldStatus == 201 && newStatus == 201)

            // Identical content pushed again, whole, to another repository: linked, not written again.
            let chunksFirst = try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1).count
            #expect(try await push(client, "gc/other", shared) == 201)
            #expect(try await client.send(.HEAD, "/v2/gc/other/blobs/\(Digest.of(shared))").status == 200)
            var liar = shared
            liar[0] ^= 1
            let lie = try await client.send(.POST, "/v2/gc/liar/blobs/uploads/?digest=\(Digest.of(shared))", body: ByteBuffer(bytes: liar))
            #expect(lie.status == 400, "a body that is not the digest's must not be linked")
            #expect(try await client.send(.HEAD, "/v2/gc/liar/blobs/\(Digest.of(shared))").status == 404)
            #expect(try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1).count == chunksFirst)

            // A write that failed half-way: a chunk on every member that no metadata names.
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let lease = try await master.leaseFileIds(count: 1)
            let stray = ChunkKey(group: 1, fileId: lease.start)
            for server in registry.chunkservers {
                _ = try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).put(stray, data: ByteBuffer(bytes: bytes(100_000, seed: 9)))
            }
            // An upload abandoned after one PATCH.
            let session = try await client.send(.POST, "/v2/gc/app/blobs/uploads/")
            let location = try #require(session.headers.first(name: "Location"))
            #expect(try await client.send(.PATCH, location, body: ByteBuffer(bytes: bytes(2_000_000, seed: 4))).status == 202)

            // Untagged, the old image's manifest is garbage, and with it what only it used.
            #expect(try await client.send(.DELETE, "/v2/gc/app/manifests/old").status == 202)
            #expect(try await client.send(.GET, "/v2/gc/app/manifests/\(oldDigest)").status == 200)
            let filesBefore = registry.chunkservers.map { volumeBytes(cluster, $0.name) }
            let chunksBefore = try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1).count

            // A dry run says what would go and deletes nothing.
            let (dryStatus, dry) = try await gc(cluster, registry, ["--grace", "0s", "--chunk-grace", "0s", "--dry-run"])
            #expect(dryStatus == 0)
            #expect(dry?.manifests == 1)
            #expect(dry?.blobs == 2, "the old config and the old-only layer")
            #expect(try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1).count == chunksBefore)
            #expect(try await client.send(.HEAD, "/v2/gc/app/blobs/\(Digest.of(onlyOld))").status == 200)

            let (status, report) = try await gc(cluster, registry, ["--grace", "0s", "--chunk-grace", "0s", "--upload-expiry", "0s", "--compact"])
            #expect(status == 0, "gc failed: \(cluster.log("meta"))")
            let freed = try #require(report)
            #expect(freed.manifests == 1)
            #expect(freed.blobs == 2)
            #expect(freed.blobBytes == UInt64(onlyOld.count + "{\"old\":1}".utf8.count))
            #expect(freed.expiredUploads == 1)
            // 17 chunks of the old layer, 1 config, 1 chunk of the abandoned upload, the stray one.
            #expect(freed.chunks == 20)
            #expect(freed.groups.first?.orphansDeleted == 1)
            #expect(freed.bytesFreed == UInt64(3 * (onlyOld.count + 9 + 2_000_000 + 100_000)))
            #expect(freed.volumesCompacted == 3, "the sealed first volume of each member")

            // What is gone is gone; what the new image uses pulls back byte for byte.
            #expect(try await client.send(.HEAD, "/v2/gc/app/blobs/\(Digest.of(onlyOld))").status == 404)
            #expect(try await client.send(.GET, "/v2/gc/app/manifests/\(oldDigest)").status == 404)
            #expect(await pullImage(client, "gc/app", "new") == nil)
            for server in registry.chunkservers {
                let listing = try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).listAll(group: 1)
                #expect(listing.count == chunksBefore - 20)
                #expect(listing[stray.fileId] == nil)
            }
            // The volume files shrank by about what was freed (a whole 64 MiB volume each).
            let filesAfter = registry.chunkservers.map { volumeBytes(cluster, $0.name) }
            for (before, after) in zip(filesBefore, filesAfter) { #expect(before - after == 64 << 20, "\(before) -> \(after)") }
            let fsck = try await cluster.chunktool(["fsck", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(fsck.status == 0, "\(fsck.output)")
            #expect(fsck.output.contains("0 garbage"))
            let events = try await master.events(limit: 1000).map(\.message)
            #expect(events.contains { $0.hasPrefix("gc freed 1 manifests, 2 blobs") })
            #expect(events.filter { $0.hasPrefix("volume compacted") }.count == 3)
            // Each run reported itself as a job: the dry run, the collection and the fsck, finished.
            let jobs = try await master.snapshot().jobs ?? []
            #expect(jobs.filter { $0.report.kind == "gc" && $0.report.state == .finished }.count >= 2, "\(jobs.map(\.report))")
            #expect(jobs.contains { $0.report.kind == "fsck" && $0.report.state == .finished && $0.report.message?.hasPrefix("no data lost") == true })
            // Nothing left: a second run frees nothing.
            let (_, again) = try await gc(cluster, registry, ["--grace", "0s", "--chunk-grace", "0s"])
            #expect(again.map { $0.chunks + $0.blobs + $0.manifests } == 0)
            let gcEvents = try await master.events(limit: 1000).filter { $0.kind == "gc" }
            #expect(gcEvents.count == 1, "a run that frees nothing (or a dry run) logs no event: \(gcEvents.map(\.message))")
        }

        @Test func chunksOfAStreamingUploadAreHeldAgainstCollection() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // Chunks are held within half a second and a push fails if it cannot within 2 s: a
            // chunk grace of 4 s is safe and far shorter than the streams below.
            let registry = try await cluster.startRegistry(imageserverArguments: ["--hold-deadline", "2s", "--chunk-size", "1M"])
            let collector = GarbageCollector(
                meta: MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport), master: MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport),
                cluster: ClusterHarness.transport, logger: Logger(label: "test"))
            let data = bytes(6_000_000, seed: 7)
            let digest = Digest.of(data)

            /// Sends `data` in 500 kB pieces, one every 0.6 s: about 7 s in all. A 1 MiB chunk takes
            /// 1.2 s to fill, so a chunk noted only once two more had filled would miss the deadline.
            func slowBody() -> AsyncStream<ByteBuffer> {
                AsyncStream { continuation in
                    Task {
                        for start in stride(from: 0, to: data.count, by: 500_000) {
                            continuation.yield(ByteBuffer(bytes: data[start..<min(start + 500_000, data.count)]))
                            try? await Task.sleep(for: .milliseconds(600))
                        }
                        continuation.finish()
                    }
                }
            }
            func send(_ method: HTTPMethod, _ path: String) async throws -> HTTPClientResponse {
                var request = HTTPClientRequest(url: registry.registryURL + path)
                request.method = method
                request.body = .stream(slowBody(), length: .known(Int64(data.count)))
                return try await HTTPClient.shared.execute(request, timeout: .seconds(60))
            }
            // Collections run all along both streams.
            let collections = Task {
                var runs = 0
                while !Task.isCancelled {
                    // Blobs and manifests keep an hour of grace: only chunks are at stake here.
                    _ = try? await collector.run(GarbageCollectionOptions(grace: .seconds(3600), chunkGrace: .seconds(4)))
                    runs += 1
                    try? await Task.sleep(for: .milliseconds(700))
                }
                return runs
            }
            // A whole blob in one POST (its session opens at the first hold), then a PATCH.
            let monolithic = try await send(.POST, "/v2/held/one/blobs/uploads/?digest=\(digest)")
            let session = try await ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport).send(.POST, "/v2/held/two/blobs/uploads/")
            let location = try #require(session.headers.first(name: "Location"))
            let patched = try await send(.PATCH, location)
            collections.cancel()
            let runs = await collections.value
            #expect(monolithic.status.code == 201)
            #expect(patched.status.code == 202)
            let finished = try await ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport).send(.PUT, location + "?digest=\(digest)")
            #expect(finished.status == 201)
            #expect(runs >= 8)
            for repo in ["held/one", "held/two"] {
                let pulled = try await ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport).send(.GET, "/v2/\(repo)/blobs/\(digest)", limit: 32 << 20)
                #expect(pulled.status == 200)
                #expect(Digest.of(Array(pulled.body.readableBytesView)) == digest, "\(repo) lost chunks to a collection")
            }
        }

        /// What the racing clients were told: the image each of their tags names, and how many
        /// pushes failed (cleanly) because a collection took a blob first.
        actor Ledger {
            var images: [String: Digest] = [:]
            var acknowledged = 0
            var refused: [Int: Int] = [:]
            func pushed(_ key: String, _ digest: Digest) { images[key] = digest; acknowledged += 1 }
            func untagged(_ key: String) { images[key] = nil }
            func failed(_ status: Int) { refused[status, default: 0] += 1 }
        }

        @Test func collectionsRacingPushesMountsAndDeletesNeverLoseAReferencedBlob() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(imageserverArguments: ["--hold-deadline", "2s"], chunkserverArguments: ["--compact-every", "0"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let collector = GarbageCollector(
                meta: MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport), master: MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport),
                cluster: ClusterHarness.transport, logger: Logger(label: "test"))
            // A small pool of layers, shared between images and pushed again after they were collected.
            let pool = (0..<8).map { bytes(200_000 + $0 * 600_000, seed: 100 + $0) }
            let repos = ["race/a", "race/b", "race/c"]
            let ledger = Ledger()
            let deadline = ContinuousClock.now + .seconds(20)

            func worker(_ w: Int) async {
                for step in 0..<60 where ContinuousClock.now < deadline {
                    let repo = repos.randomElement()!
                    let tag = "w\(w)-t\(Int.random(in: 0..<3))"
                    let key = repo + ":" + tag
                    if Int.random(in: 0..<4) == 0 {
                        if let reply = try? await client.send(.DELETE, "/v2/\(repo)/manifests/\(tag)"), reply.status == 202 { await ledger.untagged(key) }
                        continue
                    }
                    let layers = Array(pool.shuffled().prefix(Int.random(in: 1...3)))
                    let config = Array("{\"worker\":\(w),\"step\":\(step)}".utf8)
                    // Half the layers are mounted from another repository when it has them.
                    for layer in layers where Bool.random() {
                        let from = repos.randomElement()!
                        _ = try? await client.send(.POST, "/v2/\(repo)/blobs/uploads/?mount=\(Digest.of(layer))&from=\(from)")
                    }
                    guard let (status, digest) = try? await pushImage(client, repo, tag: tag, config: config, layers: layers) else { continue }
                    if status == 201 { await ledger.pushed(key, digest) } else { await ledger.failed(status) }
                }
            }
            let collections = Task {
                var freed = 0
                var runs = 0
                while ContinuousClock.now < deadline {
                    // A second of grace for blobs and manifests: a push whose manifest comes later
                    // than that after its blobs may fail, and must fail cleanly.
                    if let report = try? await collector.run(GarbageCollectionOptions(grace: .seconds(1), chunkGrace: .seconds(6))) {
                        freed += report.blobs
                        runs += 1
                    }
                    try? await Task.sleep(for: .milliseconds(300))
                }
                return (runs, freed)
            }
            await withTaskGroup(of: Void.self) { group in
                for w in 0..<3 { group.addTask { await worker(w) } }
            }
            let (runs, freed) = await collections.value
            let images = await ledger.images
            let acknowledged = await ledger.acknowledged
            print("race: \(acknowledged) images pushed, \(images.count) still tagged, \(runs) collections freed \(freed) blobs, refused \(await ledger.refused)")
            #expect(acknowledged >= 15)
            #expect(runs >= 10)
            #expect(freed > 0, "the collections never deleted anything: no race was run")

            // One last collection with nothing pushing, then every tagged image pulls whole.
            _ = try await collector.run(GarbageCollectionOptions(grace: .zero, chunkGrace: .seconds(6)))
            for (key, digest) in images {
                let parts = key.split(separator: ":").map(String.init)
                let head = try await client.send(.HEAD, "/v2/\(parts[0])/manifests/\(parts[1])", headers: [("Accept", Self.ociManifest)])
                #expect(head.headers.first(name: "Docker-Content-Digest") == digest.description, "\(key)")
                #expect(await pullImage(client, parts[0], parts[1]) == nil)
            }
            let fsck = try await cluster.chunktool(["fsck", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(fsck.status == 0, "\(fsck.output)")
        }

        @Test func killedMidCompactionAChunkserverLosesNothingAndASecondRunFinishes() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // Paced at 4 MB/s, moving the 20 MB kept layer takes about five seconds.
            let slow = ["--compact-every", "0", "--compact-rate", "4M"]
            let registry = try await cluster.startRegistry(chunkserverArguments: slow)
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: ClusterHarness.transport)
            #expect(try await pushImage(client, "kill/app", tag: "keep", config: Array("{\"keep\":1}".utf8), layers: [bytes(20_000_000, seed: 20)]).0 == 201)
            #expect(try await pushImage(client, "kill/app", tag: "drop", config: Array("{\"drop\":1}".utf8), layers: [bytes(60_000_000, seed: 21)]).0 == 201)
            #expect(try await client.send(.DELETE, "/v2/kill/app/manifests/drop").status == 202)
            let (status, _) = try await gc(cluster, registry, ["--grace", "0s", "--chunk-grace", "0s"])
            #expect(status == 0)
            let cs1 = registry.chunkservers[0]
            let volume1 = cluster.root + "/cs1/volume-000001.dat"
            #expect(FileManager.default.fileExists(atPath: volume1))

            let compaction = Task { try? await ChunkServerClient(baseURL: cs1.addr, timeout: .seconds(60), transport: ClusterHarness.transport).compact() }
            try await Task.sleep(for: .seconds(2))
            kill(cs1.process.processIdentifier, SIGKILL)
            #expect(await compaction.value == nil, "the compaction finished before the kill")
            let port = Int(cs1.addr.split(separator: ":").last!)!
            _ = try cluster.startChunkserver(master: registry.masterURL, group: 1, name: "cs1", port: port, arguments: slow)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let back = await cluster.eventually(within: 30) {
                (try? await master.snapshot())?.groups.first?.members.first { $0.id == "cs1" }?.status == .readWrite
            }
            #expect(back, "cs1 did not come back: \(cluster.log("cs1"))")

            // Every chunk cs1 lists reads back with its CRC, and its listing matches the others'.
            let listing = try await ChunkServerClient(baseURL: cs1.addr, transport: ClusterHarness.transport).listAll(group: 1)
            #expect(listing == (try await ChunkServerClient(baseURL: registry.chunkservers[1].addr, transport: ClusterHarness.transport).listAll(group: 1)))
            for info in listing.values {
                let (data, crc) = try await ChunkServerClient(baseURL: cs1.addr, transport: ClusterHarness.transport).getChecked(ChunkKey(group: 1, fileId: info.fileId))
                #expect(crc == info.crc && data.readableBytes == Int(info.length))
            }
            #expect(await pullImage(client, "kill/app", "keep") == nil)
            // A second run finishes the work: the first volume goes.
            let second = try await ChunkServerClient(baseURL: cs1.addr, timeout: .seconds(60), transport: ClusterHarness.transport).compact()
            #expect(second.error == nil)
            #expect(!FileManager.default.fileExists(atPath: volume1), "\(second)")
            #expect(!second.volumes.contains { $0.id == 1 })
            let verify = try await cluster.chunktool(["verify", "--group", "1", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
        }

        @Test func killedMidSweepTheMetaserverLosesNothingAndASecondRunFinishes() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: ClusterHarness.transport)
            #expect(try await pushImage(client, "sweep/app", tag: "keep", config: Array("{\"keep\":1}".utf8), layers: [bytes(9_000_000, seed: 30)]).0 == 201)
            let kept = try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1).count
            // Two hundred blobs no manifest refers to.
            for n in 0..<200 { #expect(try await push(client, "sweep/junk", bytes(3000, seed: 1000 + n)) == 201) }

            let metaPort = Int(registry.metaURL.split(separator: ":").last!)!
            let first = Task {
                try await ClusterHarness.run(
                    ClusterHarness.binDirectory + "/chunktool",
                    ["gc", "--master", registry.masterURL, "--meta", registry.metaURL, "--grace", "0s", "--chunk-grace", "1h"],
                    environment: ClusterHarness.clusterEnvironment)
            }
            try await Task.sleep(for: .milliseconds(400))
            let metaPid = try #require(ClusterHarness.pid(listeningOn: metaPort))
            kill(metaPid, SIGKILL)
            let interrupted = try await first.value
            print("first gc, metaserver killed under it: exit \(interrupted.status): \(interrupted.output)")
            try cluster.start("meta-restarted", ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--data", cluster.root + "/meta"])
            let up = await cluster.eventually(within: 20) { (try? await MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport).repositoryExists("sweep/app")) == true }
            #expect(up)

            let (status, report) = try await gc(cluster, registry, ["--grace", "0s", "--chunk-grace", "1h"])
            #expect(status == 0)
            #expect(report?.chunksPending == 0)
            #expect(await pullImage(client, "sweep/app", "keep") == nil)
            for server in registry.chunkservers {
                #expect(try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).listAll(group: 1).count == kept, "\(server.name) still has junk")
            }
            let fsck = try await cluster.chunktool(["fsck", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(fsck.status == 0 && fsck.output.contains("0 garbage"), "\(fsck.output)")
        }
    }
}

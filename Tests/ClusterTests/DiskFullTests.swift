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
    /// A member whose filesystem really fills (a tmpfs, root only): it turns read-only before a
    /// write fails, its group takes no more chunks, every push still lands (in the other group),
    /// and when garbage collection and compaction give space back it takes writes again by itself.
    @Suite("Disk full", .serialized, .enabled(if: ScratchFilesystem.unavailableReason == nil, "\(ScratchFilesystem.unavailableReason ?? "")"))
    struct DiskFullTests {
        static let ociManifest = "application/vnd.oci.image.manifest.v1+json"

        /// Random bytes, made once: generating them per blob would cost more than pushing them.
        static let noise: [UInt8] = {
            var generator = SystemRandomNumberGenerator()
            return (0..<(4_000_000 / 8)).flatMap { _ in withUnsafeBytes(of: generator.next()) { Array($0) } }
        }()

        /// Distinct contents for blob `n`: the noise with `n` in its first bytes, just under
        /// 4 MiB (one chunk) unless `size` says otherwise.
        static func blob(_ n: Int, size: Int = 4_000_000) -> [UInt8] {
            var data = Array(noise.prefix(size))
            withUnsafeBytes(of: UInt64(n).littleEndian) { data.replaceSubrange(0..<8, with: $0) }
            return data
        }

        /// Pushes `data` in one `POST ?digest=`; the status.
        func push(_ client: ServiceClient, _ repo: String, _ data: [UInt8]) async -> Int {
            (try? await client.send(.POST, "/v2/\(repo)/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data)).status) ?? 0
        }

        /// Nil when the blob pulls back with its digest, else what went wrong.
        func pull(_ client: ServiceClient, _ repo: String, _ digest: Digest) async -> String? {
            do {
                let reply = try await client.send(.GET, "/v2/\(repo)/blobs/\(digest)", limit: 16 << 20)
                guard reply.status == 200 else { return "\(digest): HTTP \(reply.status)" }
                return Digest.of(Array(reply.body.readableBytesView)) == digest ? nil : "\(digest): wrong bytes"
            } catch {
                return "\(digest): \(error)"
            }
        }

        /// Pushes a one-layer image tagged `tag` (its config and layer, then the manifest); the
        /// manifest's status.
        func pushImage(_ client: ServiceClient, _ repo: String, tag: String, layer: [UInt8]) async throws -> Int {
            let config = Array("{\"tag\":\"\(tag)\"}".utf8)
            for part in [config, layer] {
                guard await push(client, repo, part) == 201 else { return 0 }
            }
            let object: [String: Any] = [
                "schemaVersion": 2, "mediaType": Self.ociManifest,
                "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest.of(config).description, "size": config.count],
                "layers": [["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": Digest.of(layer).description, "size": layer.count]],
            ]
            let body = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            return try await client.send(
                .PUT, "/v2/\(repo)/manifests/\(tag)", body: ByteBuffer(bytes: body), headers: [("Content-Type", Self.ociManifest)]
            ).status
        }

        /// Chunks each group's first member holds.
        func chunkCounts(_ registry: ClusterHarness.Registry) async throws -> (group1: Int, group2: Int) {
            let one = try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1).count
            let two = try await ChunkServerClient(baseURL: registry.chunkservers[3].addr, transport: ClusterHarness.transport).listAll(group: 2).count
            return (one, two)
        }

        /// cs3's data directory is a 96 MiB tmpfs: with 32 MiB volumes it holds two and the
        /// checkpoint, and a third cannot be preallocated. Every member is capped at 768 MiB
        /// (`--capacity`), so that imageservers, which spread chunks by free space, give group 1
        /// its share rather than almost nothing beside the host's disk, while group 2 keeps room
        /// for everything after the fill (at 320 MiB a CI run filled group 2 too, 84 pushes in,
        /// and its next push was rightly refused). The reserve, 16 MiB, is one largest chunk: cs3
        /// takes about 48 MiB of chunks.
        @Test func aMemberWhoseDiskFillsTakesWritesAgainWhenGarbageCollectionFreesSpace() async throws {
            let cluster = ClusterHarness()
            let disk = try await ScratchFilesystem.tmpfs(bytes: 96 << 20, at: cluster.root + "/cs3")
            defer {
                cluster.shutdown()
                disk.remove()
                // The harness could not remove the mount point while it was mounted.
                if ProcessInfo.processInfo.environment["SPEEDY_KEEP_TEST_DATA"] == nil { try? FileManager.default.removeItem(atPath: cluster.root) }
            }
            let registry = try await cluster.startRegistry(
                groups: 2, chunkserverArguments: ["--volume-size", "32M", "--reserve", "16M", "--capacity", "768M", "--compact-every", "0"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let logs = { cluster.roleLogs(["master", "cs3", "imageserver"]) }

            // An image that stays: its layer lands on cs3's first volume, which compaction empties later.
            let kept = Self.blob(1_000_000, size: 1_000_000)
            #expect(try await pushImage(client, "disk/kept", tag: "v1", layer: kept) == 201)

            // Fill: two clients push until the master shows cs3 read-only.
            let filling = ContinuousClock.now
            var acknowledged: [Digest] = []
            var refused = 0
            var pushes = 0
            func cs3Status() async -> ServerStatus? {
                (try? await master.snapshot())?.groups.first { $0.id == 1 }?.members.first { $0.id == "cs3" }?.status
            }
            while await cs3Status() != .readOnly, pushes < 320 {
                let statuses = await withTaskGroup(of: (Int, Digest).self) { group in
                    for n in pushes..<(pushes + 2) {
                        group.addTask {
                            let data = Self.blob(n)
                            return (await push(client, "disk/fill", data), Digest.of(data))
                        }
                    }
                    return await group.reduce(into: []) { $0.append($1) }
                }
                pushes += 2
                for (status, digest) in statuses {
                    if status == 201 { acknowledged.append(digest) } else { refused += 1 }
                }
            }
            let snapshot = try await master.snapshot()
            let group1 = try #require(snapshot.groups.first { $0.id == 1 })
            #expect(group1.members.first { $0.id == "cs3" }?.status == .readOnly, "\(logs())")
            // One member full makes its group unwritable: `degraded` (read-only is every member full).
            #expect(!group1.state.isWritable && group1.state == .degraded)
            #expect(refused == 0, "\(refused) pushes refused while group 1 filled:\n\(logs())")
            print("disk-full: \(pushes) pushes of 4 MB in \(ContinuousClock.now - filling) to fill cs3; group 1 free \(group1.diskFreeBytes >> 20) MiB")

            // Group 1 takes nothing more: the next pushes all land in group 2.
            try await Task.sleep(for: .seconds(1.5))  // the imageserver's map catches up
            let before = try await chunkCounts(registry)
            for n in 1000..<1010 {
                let data = Self.blob(n)
                let status = await push(client, "disk/fill", data)
                #expect(status == 201, "push \(n): HTTP \(status)\n\(cluster.roleLogs(["imageserver"]))")
                if status == 201 { acknowledged.append(Digest.of(data)) }
            }
            let after = try await chunkCounts(registry)
            #expect(after.group1 == before.group1, "group 1 took chunks while read-only")
            #expect(after.group2 == before.group2 + 10)
            #expect(!cluster.log("cs3").contains("found the disk full"), "a write reached ENOSPC:\n\(cluster.log("cs3"))")
            for digest in acknowledged { #expect(await pull(client, "disk/fill", digest) == nil) }

            // Space comes back: the filled blobs are garbage (no image uses them); collecting them
            // and compacting gives cs3 its first volume back, and the group takes writes again.
            let collecting = ContinuousClock.now
            let gc = try await cluster.chunktool(
                ["gc", "--master", registry.masterURL, "--meta", registry.metaURL, "--grace", "0s", "--chunk-grace", "0s", "--compact"])
            #expect(gc.status == 0, "\(gc.output)")
            let freed = ContinuousClock.now
            let writable = await cluster.eventually(within: 10) {
                (try? await master.snapshot())?.groups.first { $0.id == 1 }?.state == .healthy
            }
            #expect(writable, "group 1 did not take writes again:\n\(logs())")
            // cs3 said RW again at its next heartbeat after compaction removed the volume file.
            let events = try await master.events(limit: 1000)
            let compacted = events.last { $0.kind == "volume-compacted" && $0.serverId == "cs3" }
            let backToRW = events.last { $0.serverId == "cs3" && $0.message.contains("from RO to RW") }
            let lag = try #require(backToRW).timeMs - (try #require(compacted)).timeMs
            #expect(lag < 2000, "cs3 turned RW \(lag) ms after its compaction")
            print("disk-full: gc took \(freed - collecting); cs3 RW \(lag) ms after its volume was compacted")
            try await Task.sleep(for: .seconds(1.5))
            let landed = try await chunkCounts(registry).group1
            var n = 2000
            while try await chunkCounts(registry).group1 == landed, n < 2030 {
                #expect(await push(client, "disk/again", Self.blob(n)) == 201)
                n += 1
            }
            #expect(try await chunkCounts(registry).group1 > landed, "no chunk went to group 1 in \(n - 2000) pushes")
            print("disk-full: a chunk landed on group 1 again after \(n - 2000) pushes")
            #expect(await pull(client, "disk/kept", Digest.of(kept)) == nil, "the kept image lost its layer")
        }
    }
}

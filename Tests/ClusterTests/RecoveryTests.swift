import Foundation
import SpeedyTestSupport
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Whole-cluster recovery, as an operator's script does it: a chunkserver killed under load and
    /// replaced, and bytes corrupted inside a volume file and repaired.
    @Suite("Recovery", .serialized)
    struct RecoveryTests {
        /// The repository's root, for docs/examples.
        static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

        /// Distinct contents for blob `n`: 5 MB and a bit, so two chunks each.
        static func payload(_ n: Int) -> [UInt8] {
            let count = 5_000_000 + n * 4099
            return TestBytes.random(count, seed: n)
        }

        /// What the load did: every acknowledged push (blob number and digest) and every failed pull.
        actor LoadLog {
            var pushed: [(n: Int, digest: Digest)] = []
            var refusedPushes = 0
            var pulls = 0
            var pullFailures: [String] = []
            var stopped = false

            func stop() { stopped = true }

            func push(_ n: Int, _ digest: Digest) { pushed.append((n, digest)) }
            func refused() { refusedPushes += 1 }
            func pulled(_ failure: String?) {
                pulls += 1
                if let failure { pullFailures.append(failure) }
            }
            func any() -> (n: Int, digest: Digest)? { pushed.randomElement() }
        }

        func push(_ client: ServiceClient, _ n: Int) async -> Digest? {
            let data = Self.payload(n)
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

        @Test func aKilledChunkserverIsReplacedUnderLoadByTheExampleScript() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(groups: 2)
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let log = LoadLog()

            // Before: blobs spread over both groups.
            for n in 0..<6 {
                let digest = try #require(await push(client, n))
                await log.push(n, digest)
            }

            // During: pushes and pulls run all through the failure and the replacement.
            let load = Task {
                // Bounded in count; stopped (not cancelled, which would abort a request midway) at the end.
                for n in 100..<400 {
                    if await log.stopped { break }
                    if let digest = await push(client, n) { await log.push(n, digest) } else { await log.refused() }
                    if let (_, digest) = await log.any() { await log.pulled(await pull(client, digest)) }
                }
            }
            #expect(await cluster.eventually(within: 60) { await log.pushed.count >= 10 })

            let victim = registry.chunkservers[1]
            kill(victim.process.processIdentifier, SIGKILL)
            await victim.process.exited()
            // Reads are still served: every blob pushed so far pulls back whole.
            for (_, digest) in await log.pushed { #expect(await pull(client, digest) == nil) }
            #expect(await cluster.eventually(within: 10) {
                (try? await master.snapshot())?.groups.first { $0.id == 1 }?.members.first { $0.id == victim.name }?.status == .down
            })

            // The replacement, empty, in group 1, on the dead server's address (a new disk in the same
            // host); then the script does the rest. The copy is slowed so the load keeps writing to
            // group 1 while the replacement is TRANSFERRING.
            let victimPort = Int(victim.addr.split(separator: ":").last!)!
            let replacement = try cluster.startChunkserver(master: registry.masterURL, group: 1, name: "cs2-new", port: victimPort)
            let script = Self.repositoryRoot + "/docs/examples/replace-chunkserver.sh"
            let result = try await ClusterHarness.run(
                "/bin/bash", [script, "1", replacement.addr],
                environment: [
                    "SPEEDY_MASTER": registry.masterURL, "TRANSFER_RATE": "8",
                    "PATH": ClusterHarness.binDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
                ])
            print(result.output)
            #expect(result.status == 0, "\(result.output)")
            #expect(result.output.contains("removed \(victim.name)"), "\(result.output)")
            let summaryLine = result.output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
            let summary = try JSONSerialization.jsonObject(with: Data(summaryLine.utf8)) as? [String: Any]
            #expect(summary?["clean"] as? Bool == true, "\(result.output)")
            #expect(summary?["newMember"] as? String == "cs2-new")
            // Chunks acknowledged while the replacement was being filled reached it directly.
            #expect((summary?["writtenByImageservers"] as? Int ?? 0) > 0, "\(result.output)")

            // Running the script again (a pager retrying, say) finds the work done and only verifies.
            let again = try await ClusterHarness.run(
                "/bin/bash", [script, "1", replacement.addr],
                environment: ["SPEEDY_MASTER": registry.masterURL, "PATH": ClusterHarness.binDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")])
            #expect(again.status == 0, "\(again.output)")
            #expect(again.output.contains("is RW already; verifying"), "\(again.output)")

            // A little more load on the repaired group, then after: a few more pushes.
            try await Task.sleep(for: .seconds(2))
            await log.stop()
            await load.value
            for n in 1000..<1003 {
                let digest = try #require(await push(client, n))
                await log.push(n, digest)
            }

            // Every acknowledged blob, before, during and after, pulls back with its digest.
            let pushed = await log.pushed
            #expect(pushed.count >= 20)
            for (_, digest) in pushed { #expect(await pull(client, digest) == nil) }
            let pullFailures = await log.pullFailures
            #expect(pullFailures.isEmpty, "pulls during the load failed: \(pullFailures)")

            // The group is whole: the new member is RW and holds what the others hold; the dead one is gone.
            let group1 = try #require(try await master.snapshot().groups.first { $0.id == 1 })
            #expect(group1.state == .healthy)
            #expect(Set(group1.members.map(\.id)) == ["cs1", "cs3", "cs2-new"])
            let verify = try await cluster.chunktool(["verify", "--all", "--json", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
            let fsck = try await cluster.chunktool(["fsck", "--json", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(fsck.status == 0, "\(fsck.output)")
            let report = try JSONSerialization.jsonObject(with: Data(fsck.output.utf8)) as? [String: Any]
            #expect((report?["lostChunks"] as? [Any])?.isEmpty == true)
            let listings = try await (
                ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1),
                ChunkServerClient(baseURL: replacement.addr, transport: ClusterHarness.transport).listAll(group: 1)
            )
            #expect(listings.0.count > 0)
            #expect(Set(listings.0.keys) == Set(listings.1.keys))
            let (refused, pulls) = (await log.refusedPushes, await log.pulls)
            print("recovery under load: \(pushed.count) blobs acknowledged, \(refused) pushes refused, \(pulls) pulls, \(listings.1.count) chunks on the replacement")
            // A chunk whose chain broke at the kill is written to the other group: at most the one
            // push under way at the kill may fail.
            #expect(refused <= 1, "\(refused) pushes refused")
        }

        @Test func anInterruptedTransferResumesAndAdministrationAnswersClearly() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            var digests: [Digest] = []
            for n in 20..<28 { digests.append(try #require(await push(client, n))) }  // 16 chunks

            // Administration through chunktool: clear refusals (exit 2), changes in the event log.
            let m = ["--master", registry.masterURL]
            #expect(try await cluster.chunktool(["group", "add", "5"] + m).status == 0)
            #expect(try await cluster.chunktool(["group", "add", "5"] + m).status == 2)
            #expect(try await cluster.chunktool(["server", "set-status", "cs1", "bogus"] + m).status == 2)
            #expect(try await cluster.chunktool(["server", "remove", "cs1"] + m).status == 2)
            #expect(try await cluster.chunktool(["server", "set-status", "nobody", "ro"] + m).status == 2)
            let groups = try await cluster.chunktool(["group", "list", "--json"] + m)
            #expect(groups.status == 0)
            let listed = try JSONSerialization.jsonObject(with: Data(groups.output.utf8)) as? [[String: Any]]
            #expect(listed?.compactMap { $0["id"] as? Int } == [1, 5])
            #expect(try await cluster.chunktool(["server", "set-status", "cs3", "ro"] + m).status == 0)
            #expect(try await master.snapshot().groups[0].state == .degraded)
            #expect(try await cluster.chunktool(["server", "set-status", "cs3", "rw"] + m).status == 0)
            #expect(try await master.snapshot().groups[0].state == .healthy)
            let kinds = try await master.events(limit: 1000).map(\.kind)
            #expect(kinds.filter { $0 == "status-set" }.count == 2)
            #expect(kinds.contains("group-added"))

            // cs3 dies; a replacement is filled slowly, and the first transfer is killed midway.
            let victim = registry.chunkservers[2]
            kill(victim.process.processIdentifier, SIGKILL)
            await victim.process.exited()
            #expect(await cluster.eventually(within: 10) { (try? await master.snapshot())?.groups[0].state == .degraded })
            let replacement = try cluster.startChunkserver(master: registry.masterURL, group: 1, name: "cs3-new")
            #expect(await cluster.eventually(within: 20) {
                (try? await master.snapshot())?.groups[0].members.first { $0.id == "cs3-new" }?.status == .transferring
            })
            // The master fenced the dead member when its replacement appeared.
            #expect(try await master.snapshot().groups[0].members.first { $0.id == "cs3" }?.status == .offline)
            let transfer = ClusterHarness.binDirectory + "/transfer"
            let args = ["--group", "1", "--to", replacement.addr, "--master", registry.masterURL, "--json", "--concurrency", "1"]
            let first = Task { try await ClusterHarness.run(transfer, args + ["--rate", "8"]) }
            #expect(await cluster.eventually(within: 30) {
                ((try? await ChunkServerClient(baseURL: replacement.addr, transport: ClusterHarness.transport).listAll(group: 1))?.count ?? 0) >= 4
            })
            _ = try? await ClusterHarness.run("/usr/bin/pkill", ["-KILL", "-f", "transfer --group 1 --to \(replacement.addr)"])
            _ = try await first.value
            // A chunk whose body had reached the chunkserver before the kill may still be stored
            // a moment later: count once the listing has stopped changing.
            var partial = try await ChunkServerClient(baseURL: replacement.addr, transport: ClusterHarness.transport).listAll(group: 1).count
            while true {
                try await Task.sleep(for: .seconds(1))
                let now = try await ChunkServerClient(baseURL: replacement.addr, transport: ClusterHarness.transport).listAll(group: 1).count
                if now == partial { break }
                partial = now
            }
            #expect(partial < 16, "the first transfer should have been stopped midway")
            #expect(try await master.snapshot().groups[0].members.first { $0.id == "cs3-new" }?.status == .transferring)

            // Run again: it resumes (what is there is not copied again), verifies and finishes.
            let second = try await ClusterHarness.run(transfer, args)
            #expect(second.status == 0, "\(second.output)")
            let report = try JSONSerialization.jsonObject(with: Data(second.output.utf8)) as? [String: Any]
            #expect(report?["chunksAlreadyThere"] as? Int == partial)
            #expect(report?["chunksCopied"] as? Int == 16 - partial)
            #expect(report?["retired"] as? [String] == ["cs3"])
            #expect(report?["complete"] as? Bool == true)
            let verify = try await cluster.chunktool(["verify", "--server", "cs3-new", "--json"] + m)
            #expect(verify.status == 0, "\(verify.output)")
            #expect(try await master.snapshot().groups[0].state == .healthy)
            for digest in digests { #expect(await pull(client, digest) == nil) }
        }

        @Test func corruptBytesAreServedFromAnotherReplicaThenRepaired() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let data = Self.payload(7) + Self.payload(8)  // about 10 MB: three chunks
            let digest = Digest.of(data)
            let pushed = try await client.send(.POST, "/v2/load/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(pushed.status == 201)

            // Damage two of cs2's three records, in place, under the running server.
            let volume = cluster.root + "/cs2/volume-000001.dat"
            let records = try VolumeRecords.scan(volume)
            #expect(records.count == 3)
            let damaged = [records[0], records[2]]
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: volume))
            for record in damaged {
                try handle.seek(toOffset: record.payloadOffset + 4000)
                try handle.write(contentsOf: Data([0x00, 0xff, 0x00, 0xff, 0x55]))
            }
            try handle.close()

            // Reads return the right bytes from the other replicas.
            for _ in 0..<4 { #expect(await pull(client, digest) == nil) }

            // verify names exactly the damaged chunks on exactly that member.
            let found = try await cluster.chunktool(["verify", "--group", "1", "--json", "--master", registry.masterURL])
            #expect(found.status == 1)
            let report = try JSONSerialization.jsonObject(with: Data(found.output.utf8)) as? [String: Any]
            let members = (report?["members"] as? [[String: Any]] ?? []).reduce(into: [String: [String: Any]]()) { $0[$1["id"] as? String ?? ""] = $1 }
            #expect(members["cs2"]?["corrupt"] as? [Int] == damaged.map { Int($0.fileId) }.sorted())
            #expect(members["cs1"]?["corrupt"] as? [Int] == [])
            #expect(members["cs3"]?["corrupt"] as? [Int] == [])
            #expect(report?["missing"] as? Int == 0)

            // repair fixes them; verify is clean; the blob still pulls whole.
            let repaired = try await cluster.chunktool(["repair", "--group", "1", "--master", registry.masterURL])
            #expect(repaired.status == 0, "\(repaired.output)")
            let clean = try await cluster.chunktool(["verify", "--group", "1", "--master", registry.masterURL])
            #expect(clean.status == 0, "\(clean.output)")
            #expect(clean.output.contains("3 chunks, 0 missing, 0 extra, 0 corrupt - clean"))
            #expect(await pull(client, digest) == nil)
            let fsck = try await cluster.chunktool(["fsck", "--deep", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(fsck.status == 0, "\(fsck.output)")
            #expect(fsck.output.contains("group 1: 3 chunks referenced, 3 stored, 0 under-replicated, 0 lost, 0 garbage"))
        }

        @Test func fsckReportsLostBlobsAndGarbageLoudly() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let data = Self.payload(9)
            let digest = Digest.of(data)
            #expect(try await client.send(.POST, "/v2/load/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data)).status == 201)
            let listing = try await ChunkServerClient(baseURL: registry.chunkservers[0].addr, transport: ClusterHarness.transport).listAll(group: 1)
            #expect(listing.count == 2)
            // Lose one chunk on every replica, and plant a chunk nothing refers to.
            let lost = listing.keys.min()!
            for server in registry.chunkservers {
                try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).delete(ChunkKey(group: 1, fileId: lost))
                _ = try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).put(ChunkKey(group: 1, fileId: 999_999), data: ByteBuffer(repeating: 1, count: 100))
            }
            let fsck = try await cluster.chunktool(["fsck", "--json", "--master", registry.masterURL, "--meta", registry.metaURL])
            #expect(fsck.status == 1)
            let report = try JSONSerialization.jsonObject(with: Data(fsck.output.utf8)) as? [String: Any]
            #expect(report?["lostBlobs"] as? [String] == [digest.description])
            #expect(((report?["lostChunks"] as? [[String: Any]])?.first?["fileId"] as? Int) == Int(lost))
            #expect(((report?["groups"] as? [[String: Any]])?.first?["garbage"] as? [Int]) == [999_999])
            #expect(report?["clean"] as? Bool == false)
            // Without a metaserver it cannot run.
            #expect(try await cluster.chunktool(["fsck", "--master", registry.masterURL, "--meta", "http://127.0.0.1:1"]).status == 2)
        }
    }
}

/// Reads record headers out of a volume file (layout in docs/storage-format.md).
enum VolumeRecords {
    struct Record {
        var fileId: UInt64
        var length: UInt32
        var payloadOffset: UInt64
    }

    static func scan(_ path: String) throws -> [Record] {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var records: [Record] = []
        var offset: UInt64 = 0
        while true {
            try handle.seek(toOffset: offset)
            guard let header = try handle.read(upToCount: 32), header.count == 32, header.prefix(4) == Data("SPDR".utf8) else { break }
            let bytes = [UInt8](header)
            func integer(_ at: Int, _ size: Int) -> UInt64 { (0..<size).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * $1) } }
            let length = UInt32(integer(12, 4))
            // Fillers (group 0, file id 0) hold no chunk.
            let filler = integer(8, 4) == 0 && integer(16, 8) == 0
            if bytes[5] & 1 == 0 && !filler { records.append(Record(fileId: integer(16, 8), length: length, payloadOffset: offset + 32)) }
            offset += (32 + UInt64(length) + 7) / 8 * 8
        }
        return records
    }
}

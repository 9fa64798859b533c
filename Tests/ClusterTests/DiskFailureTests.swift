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
    /// A member whose disk starts failing reads and writes with EIO (ext4 on a loop device whose
    /// size limit is cut under it, root only): its chunks are served by the other members, it
    /// reports them damaged, and the write that repair or a push makes turns it `ERR`, so its
    /// group takes no writes; once the disk is back and the member restarted, nothing is lost.
    @Suite("Disk failure", .serialized, .enabled(if: ScratchFilesystem.loopUnavailableReason == nil, "\(ScratchFilesystem.loopUnavailableReason ?? "")"))
    struct DiskFailureTests {
        static func blob(_ n: Int) -> [UInt8] {
            var data = DiskFullTests.noise
            withUnsafeBytes(of: UInt64(n).littleEndian) { data.replaceSubrange(0..<8, with: $0) }
            return data
        }

        @Test func readErrorsAreServedFromOtherMembersReportedAndTheFailingMemberStopsTakingWrites() async throws {
            let cluster = ClusterHarness()
            let disk = try await ScratchFilesystem.ext4(bytes: 256 << 20, at: cluster.root + "/cs3")
            defer {
                cluster.shutdown()
                try? disk.restoreDevice()
                disk.remove()
                if ProcessInfo.processInfo.environment["SPEEDY_KEEP_TEST_DATA"] == nil { try? FileManager.default.removeItem(atPath: cluster.root) }
            }
            // Given master arguments turn automatic repair on. Capped at 256 MiB, the host's disk
            // does not draw almost every chunk to group 2 (chunks are spread by free space).
            let registry = try await cluster.startRegistry(groups: 2, chunkserverArguments: ["--capacity", "256M"], masterArguments: [])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let cs3 = ChunkServerClient(baseURL: registry.chunkservers[2].addr, transport: ClusterHarness.transport)
            let tests = DiskFullTests()
            let logs = { cluster.roleLogs(["master", "cs3", "imageserver"]) }

            // Blobs until a few chunks are on group 1.
            var digests: [Digest] = []
            var n = 0
            while try await cs3.listAll(group: 1).count < 3, n < 20 {
                let data = Self.blob(n)
                #expect(await tests.push(client, "disk/eio", data) == 201)
                digests.append(Digest.of(data))
                n += 1
            }
            let onCS3 = try await cs3.listAll(group: 1).keys.sorted()
            try #require(onCS3.count >= 3, "\(n) blobs put no chunk on group 1")

            // The disk fails: every read and write of cs3's device past its first MiB gives EIO.
            let volumes = try FileManager.default.contentsOfDirectory(atPath: disk.path).filter { $0.hasPrefix("volume-") }.map { disk.path + "/" + $0 }
            try disk.failDevice(evicting: volumes)
            let failed = ContinuousClock.now
            // Every blob pulled at once, so reads spread over the members (each goes to the member
            // with the fewest under way): those cs3 gets fail, and are read from another member.
            for _ in 0..<3 {
                let failures = await withTaskGroup(of: String?.self) { group in
                    for digest in digests { group.addTask { await tests.pull(client, "disk/eio", digest) } }
                    return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
                }
                #expect(failures == [], "\(failures)")
            }
            // Whether a pull reached cs3 depends on timing (a tie goes to the first member): said,
            // not asserted. The read below reaches it for sure.
            let readFromCS3 = await cluster.eventually(within: 3) {
                ((try? await master.snapshot())?.groups.first { $0.id == 1 }?.members.first { $0.id == "cs3" }?.ioErrors ?? 0) > 0
            }
            print("disk-failure: a pull read from cs3 and was served from another member: \(readFromCS3)")
            let key = ChunkKey(group: 1, fileId: onCS3[0])
            do {
                _ = try await cs3.get(key)
                Issue.record("cs3 served \(key) from a failed disk")
            } catch {
                print("disk-failure: cs3's read of \(key): \(error)")
            }
            let reported = await cluster.eventually(within: 10) {
                (try? await master.events(limit: 1000))?.contains { $0.kind == "chunk-damaged" && $0.serverId == "cs3" } ?? false
            }
            #expect(reported, "no chunk-damaged event from cs3:\n\(logs())")
            let erring = await cluster.eventually(within: 15) {
                (try? await master.snapshot())?.groups.first { $0.id == 1 }?.members.first { $0.id == "cs3" }?.status == .error
            }
            print("disk-failure: cs3 ERR \(erring) \(ContinuousClock.now - failed) after the disk failed")
            let snapshot = try await master.snapshot()
            let group1 = try #require(snapshot.groups.first { $0.id == 1 })
            print("disk-failure: group 1 \(group1.state), cs3 \(group1.members.first { $0.id == "cs3" }.map { "\($0.status) io errors \($0.ioErrors)" } ?? "?")")
            let events = try await master.events(limit: 1000).filter { $0.serverId == "cs3" || $0.group == 1 }
            for event in events where ["chunk-damaged", "chunk-repaired", "chunk-lost", "status-change", "group-state"].contains(event.kind) {
                print("disk-failure: event \(event.kind): \(event.message)")
            }

            // Pushes go on, to group 2; everything pulls back.
            for m in 100..<106 {
                let data = Self.blob(m)
                #expect(await tests.push(client, "disk/eio", data) == 201)
                digests.append(Digest.of(data))
            }
            for digest in digests { #expect(await tests.pull(client, "disk/eio", digest) == nil) }
            // Nothing was lost, and nothing claims a repair the failing disk could not take.
            let whileFailed = try await master.events(limit: 1000)
            #expect(!whileFailed.contains { $0.kind == "chunk-lost" }, "\(whileFailed.map(\.message))")
            #expect(!whileFailed.contains { $0.kind == "chunk-repaired" && $0.serverId == "cs3" }, "\(whileFailed.map(\.message))")

            // The disk comes back; the operator remounts it and restarts cs3, which has every chunk.
            registry.chunkservers[2].process.terminate()
            await registry.chunkservers[2].process.exited()
            try disk.restoreDevice()
            try disk.remount()
            let port = Int(registry.chunkservers[2].addr.split(separator: ":").last!)!
            _ = try cluster.startChunkserver(master: registry.masterURL, group: 1, name: "cs3", port: port, arguments: ["--capacity", "256M"])
            let back = ContinuousClock.now
            let healthy = await cluster.eventually(within: 20) {
                (try? await master.snapshot())?.groups.first { $0.id == 1 }?.state == .healthy
            }
            #expect(healthy, "\(logs())")
            print("disk-failure: group 1 healthy \(ContinuousClock.now - back) after cs3 restarted")
            #expect(try await cs3.listAll(group: 1).keys.sorted() == onCS3)
            for fileId in onCS3 { #expect((try? await cs3.get(ChunkKey(group: 1, fileId: fileId))) != nil) }
            let verify = try await cluster.chunktool(["verify", "--group", "1", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
            for digest in digests { #expect(await tests.pull(client, "disk/eio", digest) == nil) }
        }
    }
}

import Foundation
import SpeedyTestSupport
import NIOCore
import SpeedyClients
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// The cluster heals what rots without a command: chunkservers scrub, the master repairs,
    /// and what no member holds intact is reported as lost (issue 22).
    @Suite("Self-healing", .serialized)
    struct SelfHealingTests {
        /// Scrub passes every 4 s at a test-sized rate, with the master's repairer on.
        static let scrubbing = ["--scrub-rate", "64M", "--scrub-every", "4s"]

        /// Overwrites 4 bytes at `offset` of a chunkserver's first volume, under the running server.
        static func damage(_ cluster: ClusterHarness, server: String, at offset: UInt64) throws {
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: cluster.root + "/\(server)/volume-000001.dat"))
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data([0x00, 0xff, 0x5a, 0xa5]))
            try handle.close()
        }

        /// Where to damage the `i`th chosen record: its header's CRC, its file id, its payload's
        /// start, its payload's end.
        static func offset(_ record: VolumeRecords.Record, variant i: Int) -> UInt64 {
            switch i % 4 {
            case 0: record.payloadOffset - 32 + 28
            case 1: record.payloadOffset - 32 + 16
            case 2: record.payloadOffset + 1000
            default: record.payloadOffset + UInt64(record.length) - 4
            }
        }

        @Test func scrubFindsBitRotOnEveryMemberAndTheMasterRepairsItUnderLoad() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(chunkserverArguments: Self.scrubbing, masterArguments: [])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let load = RecoveryTests.LoadLog()
            for n in 0..<6 {
                let digest = try #require(await RecoveryTests().push(client, n))
                await load.push(n, digest)
            }
            // Damage 8 chunks, each on one member only (cs1, cs2, cs3 in turn), at four kinds of place.
            let records = try VolumeRecords.scan(cluster.root + "/cs1/volume-000001.dat")
            #expect(records.count >= 12)
            var damaged: [(server: String, fileId: UInt64)] = []
            for (i, record) in records.prefix(8).enumerated() {
                let server = "cs\(i % 3 + 1)"
                let theirs = try VolumeRecords.scan(cluster.root + "/\(server)/volume-000001.dat")
                let same = try #require(theirs.first { $0.fileId == record.fileId })
                try Self.damage(cluster, server: server, at: Self.offset(same, variant: i))
                damaged.append((server, record.fileId))
            }

            // Pushes and pulls go on while the scrub finds the damage and the master repairs it.
            let loader = Task {
                var n = 100
                while !(await load.stopped), n < 160 {
                    if let digest = await RecoveryTests().push(client, n) { await load.push(n, digest) } else { await load.refused() }
                    n += 1
                    if let (_, digest) = await load.any() { await load.pulled(await RecoveryTests().pull(client, digest)) }
                }
            }
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let healed = await cluster.eventually(within: 60) {
                guard let events = try? await master.events(after: 0, limit: 1000) else { return false }
                return damaged.allSatisfy { target in
                    events.contains { $0.kind == "chunk-repaired" && $0.message.hasPrefix("chunk 1/\(target.fileId) repaired on \(target.server) ") }
                }
            }
            await load.stop()
            await loader.value
            #expect(healed, "not every damaged chunk was repaired:\n\(cluster.roleLogs(["master", "cs1", "cs2", "cs3"]))")

            // Each was reported by its member first, and no member lists damage any more.
            let events = try await master.events(after: 0, limit: 1000)
            for target in damaged {
                #expect(events.contains { $0.kind == "chunk-damaged" && $0.serverId == target.server && $0.message.hasPrefix("chunk 1/\(target.fileId) damaged") })
            }
            let clean = await cluster.eventually(within: 10) {
                guard let snapshot = try? await master.snapshot() else { return false }
                return snapshot.groups[0].members.allSatisfy { ($0.scrub?.damaged ?? [1]).isEmpty && ($0.scrub?.passes ?? 0) >= 1 }
            }
            #expect(clean)
            let snapshot = try await master.snapshot()
            #expect(snapshot.jobs?.contains { $0.report.kind == "repair" && $0.actor == "master" } == true)
            #expect(snapshot.lostChunks == [])

            // Nothing a client read was wrong, every acknowledged blob pulls back whole, and verify agrees.
            #expect(await load.pullFailures == [])
            #expect(await load.pulls > 0)
            for (_, digest) in await load.pushed { #expect(await RecoveryTests().pull(client, digest) == nil) }
            let verify = try await cluster.chunktool(["verify", "--group", "1", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
        }

        @Test func aChunkDamagedOnEveryMemberIsReportedLostWithItsBlob() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(chunkserverArguments: Self.scrubbing, masterArguments: [])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let digest = try #require(await RecoveryTests().push(client, 3))
            let record = try #require(try VolumeRecords.scan(cluster.root + "/cs1/volume-000001.dat").first)
            for server in ["cs1", "cs2", "cs3"] {
                let theirs = try #require(try VolumeRecords.scan(cluster.root + "/\(server)/volume-000001.dat").first { $0.fileId == record.fileId })
                try Self.damage(cluster, server: server, at: theirs.payloadOffset + 10)
            }
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let reported = await cluster.eventually(within: 30) {
                (try? await master.snapshot())?.lostChunks?.contains { $0.fileId == record.fileId } == true
            }
            #expect(reported, "\(cluster.roleLogs(["master"]))")
            let lost = try #require(try await master.snapshot().lostChunks?.first)
            #expect(lost.group == 1)
            #expect(lost.usedBy == ["load/app@\(digest)"])
            let events = try await master.events(after: 0, limit: 1000)
            #expect(events.contains { $0.kind == "chunk-lost" && $0.message.contains("chunk 1/\(record.fileId) LOST") && $0.message.contains("\(digest)") })
            // Nothing corrupt is served: the pull fails rather than return wrong bytes.
            #expect(await RecoveryTests().pull(client, digest) != nil)
            let status = try await cluster.chunktool(["status", "--master", registry.masterURL])
            #expect(status.status == 1, "\(status.output)")
            #expect(status.output.contains("LOST"), "\(status.output)")
            let lostRow = status.output.split(separator: "\n").first { $0.hasPrefix("LOST") && $0.contains("1/\(record.fileId) ") }
            #expect(lostRow?.contains("load/app@\(digest)") == true, "\(status.output)")
            // Each member's row says its scrub found the chunk damaged and when its last pass ended.
            let lastPass = try Regex(#"  (idle|\d+% running), 1 damaged  +\d+s ago$"#)
            for server in ["cs1", "cs2", "cs3"] {
                let row = status.output.split(separator: "\n").first { !$0.hasPrefix("LOST") && $0.contains(" \(server) ") }
                #expect(row?.contains(lastPass) == true, "\(status.output)")
            }
            let json = try await cluster.chunktool(["status", "--json", "--master", registry.masterURL])
            #expect(json.status == 1)
            let decoded = try WireJSON.decoder().decode(ClusterSnapshot.self, from: Data(json.output.utf8))
            #expect(decoded.lostChunks?.map(\.fileId) == [record.fileId])
            try await expectScrubMetrics(registry, damagedFileId: record.fileId)
        }

        /// The master counts the lost chunk; each chunkserver's scrub gauges show a finished pass
        /// and the damaged chunk.
        func expectScrubMetrics(_ registry: ClusterHarness.Registry, damagedFileId: UInt64) async throws {
            let view = ObservabilityTests()
            let master = try await view.scrape(registry.masterURL)
            #expect(master["speedy_master_lost_chunks"] == 1, "\(master.keys.filter { $0.hasPrefix("speedy_master_") }.sorted())")
            #expect(master["speedy_master_spare_servers"] == 0)
            let now = Date().timeIntervalSince1970
            for chunkserver in registry.chunkservers {
                let metrics = try await view.scrape("http://" + chunkserver.addr)
                let scrub = metrics.filter { $0.key.hasPrefix("speedy_chunkserver_scrub") }
                #expect(metrics["speedy_chunkserver_scrub_damaged_chunks"] == 1, "\(chunkserver.name): \(scrub)")
                #expect(metrics["speedy_chunkserver_scrub_progress_ratio"].map { (0...1).contains($0) } == true, "\(scrub)")
                #expect(metrics["speedy_chunkserver_scrub_running"].map { $0 == 0 || $0 == 1 } == true, "\(scrub)")
                #expect((metrics["speedy_chunkserver_scrub_checked_bytes_total"] ?? 0) > 0, "\(scrub)")
                let ended = try #require(metrics["speedy_chunkserver_scrub_last_full_pass_timestamp_seconds"], "\(scrub)")
                #expect(ended <= now + 1 && ended > now - 60, "\(chunkserver.name): last full pass \(now - ended) s ago")
            }
        }

        @Test func aChunkMissingOnOneMemberIsFoundByComparisonAndCopiedBack() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(masterArguments: ["--compare-every", "2s", "--compare-min-age", "0s"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            var digests: [Digest] = []
            for n in 0..<4 { digests.append(try #require(await RecoveryTests().push(client, n))) }
            // Two chunks deleted from cs2 behind everyone's back: no read fails, no scrub sees it.
            let cs2 = ChunkServerClient(baseURL: registry.chunkservers[1].addr, transport: ClusterHarness.transport)
            let held = try await cs2.listAll(group: 1).keys.sorted()
            #expect(held.count >= 4)
            let gone = [held[1], held[held.count - 2]]
            for fileId in gone { try await cs2.delete(ChunkKey(group: 1, fileId: fileId)) }

            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let repaired = await cluster.eventually(within: 30) {
                guard let events = try? await master.events(after: 0, limit: 1000) else { return false }
                return gone.allSatisfy { id in events.contains { $0.kind == "chunk-repaired" && $0.message.hasPrefix("chunk 1/\(id) repaired on cs2 ") && $0.message.hasSuffix("(it was missing)") } }
            }
            #expect(repaired, "\(cluster.roleLogs(["master"]))")
            for fileId in gone { #expect(try await cs2.get(ChunkKey(group: 1, fileId: fileId)).readableBytes > 0) }
            // Only the missing ones were copied; the group verifies clean and the blob pulls whole.
            let events = try await master.events(after: 0, limit: 1000)
            #expect(events.filter { $0.kind == "chunk-repaired" }.count == gone.count)
            #expect(try await master.snapshot().lostChunks == [])
            let verify = try await cluster.chunktool(["verify", "--group", "1", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
            for digest in digests { #expect(await RecoveryTests().pull(client, digest) == nil) }
        }

        @Test func aMemberKilledUnderLoadIsReplacedByASpareWithNoCommand() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry(groups: 2, masterArguments: ["--replace-after", "3s"])
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let sparePort = ClusterHarness.freePort()
            try cluster.start(
                "spare1",
                [
                    "chunkserver", "--spare", "--master", registry.masterURL, "--listen", "127.0.0.1:\(sparePort)", "--data", cluster.root + "/spare1",
                    "--id", "spare1", "--volume-size", "64M", "--reserve", "0", "--heartbeat-interval", "0.25",
                ])
            #expect(await cluster.eventually(within: 20) {
                (try? await master.snapshot())?.spares?.contains { $0.id == "spare1" && $0.status == .readWrite } == true
            })
            // A spare serves no group: the imageservers place nothing on it.
            #expect(try await master.snapshot().groups.allSatisfy { !$0.members.contains { $0.id == "spare1" } })
            let listed = try await cluster.chunktool(["server", "list", "--master", registry.masterURL])
            #expect(listed.output.split(separator: "\n").contains { $0.hasPrefix("spare1") && $0.contains(" spare ") }, "\(listed.output)")
            let status = try await cluster.chunktool(["status", "--master", registry.masterURL])
            #expect(status.output.contains("spares 1:") && status.output.split(separator: "\n").contains { $0.hasPrefix("spare1 ") }, "\(status.output)")
            #expect(try await ObservabilityTests().scrape(registry.masterURL)["speedy_master_spare_servers"] == 1)

            let log = RecoveryTests.LoadLog()
            for n in 0..<6 {
                let digest = try #require(await RecoveryTests().push(client, n))
                await log.push(n, digest)
            }
            let load = Task {
                for n in 100..<400 {
                    if await log.stopped { break }
                    if let digest = await RecoveryTests().push(client, n) { await log.push(n, digest) } else { await log.refused() }
                    if let (_, digest) = await log.any() { await log.pulled(await RecoveryTests().pull(client, digest)) }
                }
            }
            #expect(await cluster.eventually(within: 60) { await log.pushed.count >= 10 })
            let victim = registry.chunkservers[1]
            kill(victim.process.processIdentifier, SIGKILL)
            await victim.process.exited()

            // No command: the master gives the spare the dead member's place and fills it.
            let replaced = await cluster.eventually(within: 90) {
                guard let group = try? await master.snapshot().groups.first(where: { $0.id == 1 }) else { return false }
                return group.state == .healthy && Set(group.members.map(\.id)) == ["cs1", "cs3", "spare1"]
            }
            #expect(replaced, "\(cluster.roleLogs(["master", "spare1"]))")
            #expect(try await ObservabilityTests().scrape(registry.masterURL)["speedy_master_spare_servers"] == 0)
            try await Task.sleep(for: .seconds(2))
            await log.stop()
            await load.value

            // The event log says each step, and that the master took it.
            let events = try await master.events(after: 0, limit: 1000)
            let kinds = events.filter { $0.serverId == "spare1" || $0.serverId == victim.name }.map(\.kind)
            for kind in ["spare-assigned", "server-fenced", "spare-filled", "server-removed"] { #expect(kinds.contains(kind), "\(kinds)") }
            #expect(events.contains { $0.kind == "spare-assigned" && $0.message.contains("by master") })
            let snapshot = try await master.snapshot()
            #expect(snapshot.jobs?.contains { $0.report.kind == "transfer" && $0.actor == "master" && $0.report.state == .finished } == true)
            #expect(snapshot.spares == [])

            // Every acknowledged blob pulls back whole; the group verifies clean.
            let pushed = await log.pushed
            for (_, digest) in pushed { #expect(await RecoveryTests().pull(client, digest) == nil) }
            #expect(await log.pullFailures == [], "pulls during the load failed")
            let verify = try await cluster.chunktool(["verify", "--all", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
            let (refused, pulls) = (await log.refusedPushes, await log.pulls)
            print("replacement by a spare: \(pushed.count) blobs acknowledged, \(refused) pushes refused, \(pulls) pulls")
            #expect(refused <= 1, "\(refused) pushes refused")
        }

        /// Starts the spare `spare1` on `port`, its data in the cluster's `spare1` directory.
        @discardableResult
        static func startSpare(_ cluster: ClusterHarness, master: String, port: Int) throws -> Process {
            try cluster.start(
                "spare1",
                [
                    "chunkserver", "--spare", "--master", master, "--listen", "127.0.0.1:\(port)", "--data", cluster.root + "/spare1",
                    "--id", "spare1", "--volume-size", "64M", "--reserve", "0", "--heartbeat-interval", "0.25",
                ])
        }

        @Test func aSpareFillGoesOnAcrossRestartsOfTheMasterASourceAndTheSpare() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // Filled at 4 MB/s, the 60 MB of the group take long enough to restart things midway.
            let masterArguments = ["--replace-after", "2s", "--recovery-rate", "4M"]
            let registry = try await cluster.startRegistry(masterArguments: masterArguments)
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let sparePort = ClusterHarness.freePort()
            var spare = try Self.startSpare(cluster, master: registry.masterURL, port: sparePort)
            var pushed: [Digest] = []
            for n in 0..<12 { pushed.append(try #require(await RecoveryTests().push(client, n))) }
            #expect(await cluster.eventually(within: 20) { (try? await master.snapshot())?.spares?.count == 1 })
            kill(registry.chunkservers[1].process.processIdentifier, SIGKILL)

            // Midway through the fill, the master restarts...
            func filling() async -> Int {
                (try? await master.snapshot())?.jobs?.first { $0.report.kind == "transfer" && $0.report.state == .running }?.report.done ?? 0
            }
            #expect(await cluster.eventually(within: 30) { await filling() >= 3 }, "\(cluster.roleLogs(["master", "spare1"]))")
            let masterPort = Int(registry.masterURL.split(separator: ":").last!)!
            let masterPid = try #require(ClusterHarness.pid(listeningOn: masterPort))
            kill(masterPid, SIGTERM)
            #expect(await cluster.eventually(within: 10) { ClusterHarness.pid(listeningOn: masterPort) == nil })
            try cluster.start(
                "master",
                ["chunkmaster", "--listen", "127.0.0.1:\(masterPort)", "--data", cluster.root + "/master", "--down-after", "1.5"] + masterArguments)
            // ...and goes on; then a source member is killed and comes back (the fill reads from
            // the other meanwhile), and the spare is killed and comes back on its data directory.
            #expect(await cluster.eventually(within: 30) { await filling() >= 6 }, "\(cluster.roleLogs(["master", "spare1"]))")
            let source = registry.chunkservers[0]
            kill(source.process.processIdentifier, SIGKILL)
            await source.process.exited()
            try await Task.sleep(for: .seconds(1))
            let sourcePort = Int(source.addr.split(separator: ":").last!)!
            _ = try cluster.startChunkserver(master: registry.masterURL, group: 1, name: source.name, port: sourcePort)
            #expect(await cluster.eventually(within: 20) {
                (try? await master.snapshot())?.groups.first?.members.first { $0.id == source.name }?.status == .readWrite
            })
            #expect(try await master.snapshot().groups.first?.state == .recovering, "the fill ended before the source came back")
            kill(spare.processIdentifier, SIGKILL)
            await spare.exited()
            spare = try Self.startSpare(cluster, master: registry.masterURL, port: sparePort)

            let healed = await cluster.eventually(within: 90) {
                guard let group = try? await master.snapshot().groups.first else { return false }
                return group.state == .healthy && Set(group.members.map(\.id)) == ["cs1", "cs3", "spare1"]
            }
            #expect(healed, "\(cluster.roleLogs(["master", "spare1"]))")
            // The spare came back in its group (kept in its data directory), not as a spare.
            #expect(try String(contentsOfFile: cluster.root + "/spare1/group", encoding: .utf8) == "1\n")
            let events = try await master.events(after: 0, limit: 1000)
            #expect(events.filter { $0.kind == "spare-assigned" }.count == 1)
            #expect(events.contains { $0.kind == "spare-filled" && $0.serverId == "spare1" })
            for digest in pushed { #expect(await RecoveryTests().pull(client, digest) == nil) }
            let verify = try await cluster.chunktool(["verify", "--group", "1", "--master", registry.masterURL])
            #expect(verify.status == 0, "\(verify.output)")
        }
    }
}

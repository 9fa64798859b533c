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
    /// The real `speedy-console` in a real terminal (tmux), watching a real cluster, read back the
    /// way a person would see it.
    @Suite("Console in tmux", .serialized)
    struct ConsoleTests {
        /// A tmux server of its own (its own socket), so the test touches no other session.
        struct Tmux {
            let socket = "speedy-test-\(UUID().uuidString.prefix(8))"
            let session = "console"

            /// tmux answers in milliseconds, so it is run on the caller's thread: its screen is
            /// read in polling conditions, which are not async.
            @discardableResult
            func run(_ arguments: [String]) throws -> String {
                try SpawnedProgram.runBlocking("/usr/bin/tmux", ["-L", socket] + arguments, environment: ClusterHarness.clusterEnvironment).output
            }

            func screen() -> String { (try? run(["capture-pane", "-p", "-t", session])) ?? "" }
            func keys(_ keys: String...) throws { try run(["send-keys", "-t", session] + keys) }
            func display(_ format: String) -> String {
                ((try? run(["display-message", "-p", "-t", session, format])) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }

        @Test func consoleShowsTheClusterFollowsAFailureAndQuitsCleanly() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
                Issue.record("tmux is not installed (.ci/run installs it)")
                return
            }
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster()
            var servers: [(addr: String, process: Process)] = []
            for i in 1...3 { servers.append(try cluster.startChunkserver(master: masterURL, group: 1, name: "cs\(i)")) }
            _ = try cluster.startChunkserver(master: masterURL, group: 2, name: "solo")
            let master = MasterClient(baseURL: masterURL, transport: ClusterHarness.transport)
            #expect(await cluster.eventually(within: 20) {
                guard let snapshot = try? await master.snapshot() else { return false }
                return snapshot.totals.serversUp == 4 && snapshot.groups.allSatisfy { $0.state == .healthy }
            })
            // Steady traffic while the console watches, so there are throughput figures to show.
            let addrs = servers.map(\.addr)
            // Continuous (each member written in parallel, no pause), so nearly every heartbeat
            // interval has writes in it even when other tests load the machine; bounded in count.
            let traffic = Task {
                for id in 1...1500 as ClosedRange<UInt64> where !Task.isCancelled {
                    await withTaskGroup(of: Void.self) { puts in
                        for addr in addrs {
                            puts.addTask { _ = try? await ChunkServerClient(baseURL: addr, transport: ClusterHarness.transport).put(ChunkKey(group: 1, fileId: id), data: ByteBuffer(repeating: 7, count: 1 << 18)) }
                        }
                    }
                }
            }
            defer { traffic.cancel() }

            let tmux = Tmux()
            defer { _ = try? tmux.run(["kill-server"]) }
            try tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "100", "-y", "30", "-e", "LANG=C.UTF-8", "-e", "NO_COLOR=", "bash --norc --noprofile"])
            try tmux.keys("\(ClusterHarness.binDirectory)/speedy-console --master \(masterURL)", "Enter")

            let shown = await cluster.eventually(within: 15) {
                let s = tmux.screen()
                return s.contains("● healthy") && ["cs1", "cs2", "cs3", "solo"].allSatisfy(s.contains) && s.contains("%")
                    && (s.contains("MiB/s") || s.contains("KiB/s"))
            }
            #expect(shown, "screen:\n\(tmux.screen())")
            #expect(tmux.display("#{alternate_on}") == "1")
            #expect(tmux.screen().contains("servers 4/4 up"))

            // A member dies: within a few seconds its group shows degraded and it shows DOWN.
            kill(servers[1].process.processIdentifier, SIGKILL)
            let degraded = await cluster.eventually(within: 10) {
                let s = tmux.screen()
                return s.contains("▲ degraded") && s.contains("DOWN") && s.contains("servers 3/4 up")
            }
            #expect(degraded, "screen:\n\(tmux.screen())")

            // The help overlay, then any key closes it.
            try tmux.keys("?")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("Speedy console: keys") })
            try tmux.keys("x")
            #expect(await cluster.eventually(within: 3) { !tmux.screen().contains("Speedy console: keys") })

            // q gives back a clean shell: alternate screen off, bash in front, and it still echoes.
            try tmux.keys("q")
            let back = await cluster.eventually(within: 5) { tmux.display("#{alternate_on}") == "0" && tmux.display("#{pane_current_command}") == "bash" }
            #expect(back)
            try tmux.keys("echo clean-$((40+2))", "Enter")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("clean-42") })
        }

        @Test func consoleShowsTheFrontRolesAndActsAfterConfirmation() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
                Issue.record("tmux is not installed (.ci/run installs it)")
                return
            }
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            // A few chunks for the verify to read.
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let data = [UInt8](repeating: 42, count: 9 << 20)
            #expect(try await client.send(.POST, "/v2/console/app/blobs/uploads/?digest=\(Digest.of(data))", body: ByteBuffer(bytes: data)).status == 201)

            let tmux = Tmux()
            defer { _ = try? tmux.run(["kill-server"]) }
            try tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "160", "-y", "44", "-e", "LANG=C.UTF-8", "-e", "NO_COLOR=", "bash --norc --noprofile"])
            try tmux.keys("env -u SUDO_USER USER=alice \(ClusterHarness.binDirectory)/speedy-console --master \(registry.masterURL)", "Enter")
            // The front pane: the imageserver and the metaserver, up.
            let front = await cluster.eventually(within: 15) {
                let s = tmux.screen()
                return s.contains("Front") && s.contains("imageserver@\(registry.hostPort)") && s.contains("metaserver@") && s.contains("push ")
            }
            #expect(front, "screen:\n\(tmux.screen())")

            // Select cs2, ask to set it RO, decline once: nothing changes.
            try tmux.keys("j")
            try tmux.keys("s")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("Set cs2 to: [w] RW  [r] RO  [o] OFFLINE") })
            try tmux.keys("r")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("Set cs2 to RO (it stops taking writes)? [y/N]") })
            try tmux.keys("n")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("cancelled") })
            try await Task.sleep(for: .seconds(1))
            #expect(try await master.snapshot().groups[0].members.first { $0.id == "cs2" }?.status == .readWrite)

            // Again, confirmed: the master has it RO, the screen shows it, the event log names who.
            try tmux.keys("s")
            try tmux.keys("r")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("[y/N]") })
            try tmux.keys("y")
            #expect(await cluster.eventually(within: 5) {
                (try? await master.snapshot())?.groups[0].members.first { $0.id == "cs2" }?.status == .readOnly
            })
            #expect(await cluster.eventually(within: 5) { tmux.screen().contains("cs2 set to RO") && tmux.screen().contains("▲ degraded") }, "screen:\n\(tmux.screen())")
            let events = try await master.events(limit: 1000).map(\.message)
            #expect(events.contains { $0.contains("cs2") && $0.contains("set to RO") && $0.contains("by alice@") && $0.contains("speedy-console") }, "\(events)")

            // Start a verify of the group: its progress and outcome show in the jobs pane.
            try tmux.keys("v")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("Verify group 1") })
            try tmux.keys("y")
            let finished = await cluster.eventually(within: 30) {
                let s = tmux.screen()
                return s.contains("Jobs") && s.contains("verify group 1") && s.contains("finished: clean") && s.contains("100%")
            }
            #expect(finished, "screen:\n\(tmux.screen())")
            let job = try #require(try await master.snapshot().jobs?.first)
            #expect(job.report.kind == "verify" && job.report.state == .finished && job.report.done == job.report.total && job.report.total > 0)
            #expect(job.actor?.hasPrefix("alice@") == true)
            try tmux.keys("q")
        }

        /// Issue 22: each server's scrub, the damaged chunks, a spare with its zone and the alert
        /// line for a lost chunk, as the console shows them (120 columns: the SCRUB column shows).
        @Test func consoleShowsScrubsASpareAndALostChunk() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
                Issue.record("tmux is not installed (.ci/run installs it)")
                return
            }
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let scrubbing = SelfHealingTests.scrubbing
            let registry = try await cluster.startRegistry(chunkserverArguments: scrubbing, masterArguments: [])
            try cluster.start(
                "spare1",
                [
                    "chunkserver", "--spare", "--zone", "rack-s", "--master", registry.masterURL, "--listen", "127.0.0.1:\(ClusterHarness.freePort())",
                    "--data", cluster.root + "/spare1", "--id", "spare1", "--volume-size", "64M", "--reserve", "0", "--heartbeat-interval", "0.25",
                ] + scrubbing)
            // A blob whose first chunk rots on every member: the master reports it lost.
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            let digest = try #require(await RecoveryTests().push(client, 3))
            let record = try #require(try VolumeRecords.scan(cluster.root + "/cs1/volume-000001.dat").first)
            for server in ["cs1", "cs2", "cs3"] {
                let theirs = try #require(try VolumeRecords.scan(cluster.root + "/\(server)/volume-000001.dat").first { $0.fileId == record.fileId })
                try SelfHealingTests.damage(cluster, server: server, at: theirs.payloadOffset + 10)
            }

            let tmux = Tmux()
            defer { _ = try? tmux.run(["kill-server"]) }
            try tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "36", "-e", "LANG=C.UTF-8", "-e", "NO_COLOR=", "bash --norc --noprofile"])
            try tmux.keys("\(ClusterHarness.binDirectory)/speedy-console --master \(registry.masterURL)", "Enter")
            // The spare's row: marked spare, its zone, a finished scrub pass (nothing to read).
            let spareRow = try Regex(#"^spare rack-s +spare1 .*RW .*% +idle \d+s "#)
            let spare = await cluster.eventually(within: 20) {
                let s = tmux.screen()
                return s.contains("SCRUB") && s.contains("+ 1 spare") && s.split(separator: "\n").contains { $0.contains(spareRow) }
            }
            #expect(spare, "screen:\n\(tmux.screen())")
            // The scrubs find the damage on every member; the master calls the chunk lost.
            let short = "load/app@sha256:\(digest.hex.prefix(12))…"
            let damagedRow = try Regex(#" cs\d .* RW .*% 1 damaged "#)
            let lost = await cluster.eventually(within: 60) {
                let s = tmux.screen()
                let damagedRows = s.split(separator: "\n").filter { $0.contains(damagedRow) }
                return s.contains("LOST 1 chunk in group 1 — used by \(short)") && damagedRows.count == 3 && s.contains("│ 3 damaged")
            }
            #expect(lost, "screen:\n\(tmux.screen())\n\(cluster.roleLogs(["master"]))")
            // cs1 is selected: its detail says where its scrub stands and what it found.
            let detail = try Regex(#" scrub   (idle|\d+%)  full pass \d+s ago"#)
            #expect(await cluster.eventually(within: 5) {
                let s = tmux.screen()
                return s.contains(detail) && s.contains(" damaged 1 now  1 found") && s.contains("zone 127.0.0.1")
            }, "screen:\n\(tmux.screen())")
            // The spare selected (the last row): the detail pane says it is one, and its zone.
            for _ in 0..<3 { try tmux.keys("j") }
            let selected = await cluster.eventually(within: 5) {
                let s = tmux.screen()
                return s.contains(" spare  in no group yet") && s.contains("zone rack-s") && s.contains(" spare1 RW heartbeat")
            }
            #expect(selected, "screen:\n\(tmux.screen())")
            try tmux.keys("q")
            #expect(await cluster.eventually(within: 5) { tmux.display("#{pane_current_command}") == "bash" })
        }

        /// Issue 22: what the cluster does by itself shows as it happens: a spare replacing a
        /// member killed with SIGKILL (the master's transfer job and its events), then a drain
        /// of another group (chunktool's drain job).
        @Test func consoleShowsAReplacementAndADrainAsTheyHappen() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
                Issue.record("tmux is not installed (.ci/run installs it)")
                return
            }
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // Filled at 4 MB/s, the fill is slow enough to be seen running.
            let registry = try await cluster.startRegistry(groups: 2, masterArguments: ["--replace-after", "2s", "--recovery-rate", "4M"])
            try SelfHealingTests.startSpare(cluster, master: registry.masterURL, port: ClusterHarness.freePort())
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(30), transport: ClusterHarness.transport)
            var pushed: [Digest] = []
            for n in 0..<12 { pushed.append(try #require(await RecoveryTests().push(client, n))) }

            let tmux = Tmux()
            defer { _ = try? tmux.run(["kill-server"]) }
            try tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "120", "-y", "40", "-e", "LANG=C.UTF-8", "-e", "NO_COLOR=", "bash --norc --noprofile"])
            try tmux.keys("\(ClusterHarness.binDirectory)/speedy-console --master \(registry.masterURL)", "Enter")
            #expect(await cluster.eventually(within: 20) { tmux.screen().contains("+ 1 spare") }, "screen:\n\(tmux.screen())")

            // cs2 dies: the master gives spare1 its place and fills it, on screen while it runs.
            kill(registry.chunkservers[1].process.processIdentifier, SIGKILL)
            let filling = await cluster.eventually(within: 30) {
                let s = tmux.screen()
                return s.contains("transfer group 1: spare spare1") && s.contains("spare spare1 joined group 1 as TRANSFERRING")
                    && s.split(separator: "\n").contains { $0.contains("transfer group 1: spare spare1") && $0.contains("ETA") }
            }
            #expect(filling, "screen:\n\(tmux.screen())")
            let filled = await cluster.eventually(within: 90) {
                let s = tmux.screen()
                return s.contains("spare spare1 filled in group 1") && s.split(separator: "\n").contains { $0.contains("transfer group 1: spare spare1") && $0.contains("finished") }
            }
            #expect(filled, "screen:\n\(tmux.screen())")

            // An operator drains group 2: chunktool's job shows with its progress, then finished.
            let drain = Task.detached {
                try await cluster.chunktool(["group", "drain", "2", "--settle", "3s", "--master", registry.masterURL, "--meta", registry.metaURL, "--json"])
            }
            let draining = await cluster.eventually(within: 20) {
                let s = tmux.screen()
                return s.split(separator: "\n").contains { $0.contains("drain group 2") && $0.contains("%") } && s.contains("group 2 is draining")
            }
            #expect(draining, "screen:\n\(tmux.screen())")
            let result = try await drain.value
            #expect(result.status == 0, "\(result.output)")
            #expect(await cluster.eventually(within: 5) {
                tmux.screen().split(separator: "\n").contains { $0.contains("drain group 2") && $0.contains("finished") }
            }, "screen:\n\(tmux.screen())")
            try tmux.keys("q")
            for digest in pushed { #expect(await RecoveryTests().pull(client, digest) == nil) }
        }

        @Test func consoleSurvivesAnUnreachableMasterAndCtrlC() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux") else {
                Issue.record("tmux is not installed (.ci/run installs it)")
                return
            }
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let tmux = Tmux()
            defer { _ = try? tmux.run(["kill-server"]) }
            try tmux.run(["new-session", "-d", "-s", tmux.session, "-x", "80", "-y", "24", "-e", "TERM=vt100", "-e", "NO_COLOR=1", "bash --norc --noprofile"])
            let port = ClusterHarness.freePort()
            try tmux.keys("TERM=vt100 NO_COLOR=1 \(ClusterHarness.binDirectory)/speedy-console --master http://127.0.0.1:\(port)", "Enter")
            let banner = await cluster.eventually(within: 10) { tmux.screen().contains("master unreachable") }
            #expect(banner, "screen:\n\(tmux.screen())")
            // Plain glyphs only on a vt100 without colours.
            #expect(!tmux.screen().contains("─"))
            try tmux.keys("C-c")
            let back = await cluster.eventually(within: 5) { tmux.display("#{pane_current_command}") == "bash" }
            #expect(back)
            try tmux.keys("echo still-$((1+1))", "Enter")
            #expect(await cluster.eventually(within: 3) { tmux.screen().contains("still-2") })
        }
    }
}

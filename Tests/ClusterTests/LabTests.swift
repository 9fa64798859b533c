import Foundation
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A whole cluster on a ``NetworkLab``: every role on a host of its own, reached only through
/// the lab's links. Clients run on the `cl` host.
struct LabCluster {
    let lab: NetworkLab
    let harness: ClusterHarness
    let masterURL: String
    /// The imageservers' base URLs, on hosts `is1` and `is2`.
    let registries: [String]
    /// Group 1 is on hosts a1 a2 a3, group 2 on b1 b2 b3.
    static let chunkHosts = ["a1", "a2", "a3", "b1", "b2", "b3"]

    static func start(rate: String = "1gbit") async throws -> LabCluster {
        let lab = try await NetworkLab(hosts: ["m", "is1", "is2", "cl"] + chunkHosts, rate: rate)
        let harness = ClusterHarness()
        let m = lab["m"].address
        let masterURL = "http://\(m):8099"
        do {
            // On every address, telling clients the one they reach it at.
            try harness.start(
                "master", ["chunkmaster", "--listen", "0.0.0.0:8099", "--advertise", "\(m):8099", "--data", harness.root + "/master", "--down-after", "1.5"],
                on: lab["m"])
            try harness.start("meta", ["metaserver", "--listen", "\(m):8100", "--data", harness.root + "/meta"], on: lab["m"])
            for host in chunkHosts {
                // Listening on every address, so the one the others reach it at is advertised.
                try harness.start(
                    host,
                    [
                        "chunkserver", "--master", masterURL, "--group", host.hasPrefix("a") ? "1" : "2", "--listen", "0.0.0.0:7657",
                        "--advertise", "\(lab[host].address):7657", "--data", harness.root + "/\(host)", "--id", host,
                        "--volume-size", "256M", "--reserve", "0", "--heartbeat-interval", "0.25",
                    ], on: lab[host])
            }
            for host in ["is1", "is2"] {
                try harness.start(host, ["imageserver", "--listen", "0.0.0.0:6788", "--master", masterURL, "--meta", "http://\(m):8100"], on: lab[host])
            }
        } catch {
            harness.shutdown()
            lab.down()
            throw error
        }
        let cluster = LabCluster(lab: lab, harness: harness, masterURL: masterURL, registries: ["is1", "is2"].map { "http://\(lab[$0].address):6788" })
        let ready = await harness.eventually(within: 40) {
            guard let snapshot = try? await cluster.status(), snapshot.groups.count == 2,
                snapshot.groups.allSatisfy({ $0.state == .healthy && $0.members.count == 3 })
            else { return false }
            for url in cluster.registries {
                guard let reply = try? await lab.exec(on: "cl", "/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "\(url)/v2/"]),
                    reply.output == "200"
                else { return false }
            }
            return true
        }
        guard ready else {
            cluster.stop()
            throw HarnessError("lab cluster did not come up:\n\(harness.log("master"))\n\(harness.log("is1"))\n\(harness.log("a1"))")
        }
        return cluster
    }

    /// The master's cluster map, asked from the client host with `chunktool status --json`.
    func status() async throws -> ClusterSnapshot {
        let result = try await lab.exec(on: "cl", ClusterHarness.binDirectory + "/chunktool", ["status", "--json", "--master", masterURL])
        guard result.status != 2, let json = result.output.data(using: .utf8) else { throw HarnessError("chunktool status: \(result.output)") }
        return try WireJSON.decoder().decode(ClusterSnapshot.self, from: json)
    }

    /// Runs `speedy-bench registry` on the client host; throws unless every digest checked out.
    func bench(_ arguments: [String]) async throws -> String {
        let result = try await lab.exec(on: "cl", ClusterHarness.binDirectory + "/speedy-bench", ["registry"] + arguments)
        guard result.status == 0 else { throw HarnessError("speedy-bench registry \(arguments.joined(separator: " ")): \(result.output)") }
        return result.output
    }

    /// Stops every role, then removes the lab's hosts.
    func stop() {
        harness.shutdown()
        lab.down()
    }
}

extension ProcessSuites {
    /// The cluster across hosts: each role on a network namespace of its own, with 1 Gbit/s
    /// links; links cut and hosts partitioned under load.
    @Suite("Across hosts (network lab)", .serialized, .enabled(if: NetworkLab.available, "needs root and network namespaces (Tests/Lab/speedy-lab check)"))
    struct LabTests {
        @Test func skopeoPushesThroughOneImageserverAndPullsThroughTheOther() async throws {
            let cluster = try await LabCluster.start()
            defer { cluster.stop() }
            let layout = try await cluster.harness.makeImage(named: "lab", randomBytes: 20_000_000)
            let (is1, is2) = (cluster.registries[0].dropFirst(7), cluster.registries[1].dropFirst(7))
            let push = try await cluster.lab.exec(
                on: "cl", "/usr/bin/skopeo", ["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(is1)/lab/app:1"])
            #expect(push.status == 0, "\(push.output)")
            let out = cluster.harness.root + "/pulled"
            let pull = try await cluster.lab.exec(
                on: "cl", "/usr/bin/skopeo", ["copy", "--src-tls-verify=false", "docker://\(is2)/lab/app:1", "oci:\(out):latest"])
            #expect(pull.status == 0, "\(pull.output)")
            let blobs = { (dir: String) in Set((try? FileManager.default.contentsOfDirectory(atPath: dir + "/blobs/sha256")) ?? []) }
            // Layer, config and manifest came back with the digests they were pushed with (the
            // source layout also holds umoci's earlier empty image).
            #expect(blobs(out).count == 3)
            #expect(blobs(out).isSubset(of: blobs(layout)))
            // Both groups took chunks: the layer was spread over the cluster, not one host.
            let snapshot = try await cluster.status()
            #expect(snapshot.master == cluster.masterURL, "the master calls itself \(snapshot.master)")
            #expect(snapshot.groups.allSatisfy { $0.members.allSatisfy { $0.chunkCount > 0 } })
        }

        @Test func aPullCompletesWhenTheLinksOfTwoMembersPerGroupAreCut() async throws {
            let cluster = try await LabCluster.start()
            defer { cluster.stop() }
            let blob = ["--count", "1", "--size", "48M", "--seed", "4242", "--url", cluster.registries[0]]
            _ = try await cluster.bench(blob + ["--phase", "push"])
            // A slow client, so the pull is still running when the links go: 48 MiB at 100 Mbit/s is 4 s.
            try await cluster.lab.shape("cl", "100mbit")
            let started = Date()
            async let pulled = cluster.bench(blob + ["--phase", "pull"])
            try await Task.sleep(for: .seconds(1.5))
            // Unplugged, not shut down: a read in flight hangs rather than failing fast.
            for host in ["a1", "a2", "b1", "b2"] { try await cluster.lab.cut(host) }
            let output = try await pulled
            #expect(output.contains("1 digests verified"), "\(output)")
            print("pull across the cut took \(String(format: "%.1f", Date().timeIntervalSince(started))) s")
            let snapshot = try await cluster.status()
            #expect(snapshot.groups.allSatisfy { $0.state == .degraded })
            for host in ["a1", "a2", "b1", "b2"] { try await cluster.lab.mend(host) }
        }

        @Test func aChunkserverCutOffFromTheMasterDegradesItsGroupAndLosesNothing() async throws {
            let cluster = try await LabCluster.start()
            defer { cluster.stop() }
            func blobs(seed: Int) -> [String] { ["--count", "4", "--size", "8M", "--concurrency", "4", "--seed", String(seed)] }
            _ = try await cluster.bench(blobs(seed: 1000) + ["--url", cluster.registries[0], "--phase", "push"])

            // a1 still reaches the imageservers and its group, but not the master.
            try await cluster.lab.partition("a1", "m")
            let degraded = await cluster.harness.eventually(within: 10) {
                (try? await cluster.status())?.groups.first { $0.id == 1 }?.state == .degraded
            }
            #expect(degraded)
            let before = try await cluster.status()
            func chunks(_ snapshot: ClusterSnapshot, group: UInt32) -> [UInt64] {
                snapshot.groups.first { $0.id == group }!.members.filter { $0.id != "a1" }.map(\.chunkCount)
            }
            try await Task.sleep(for: .seconds(1.5))
            _ = try await cluster.bench(blobs(seed: 2000) + ["--url", cluster.registries[1], "--phase", "push"])
            try await Task.sleep(for: .seconds(1))
            let during = try await cluster.status()
            // Every chunk written meanwhile went to group 2.
            #expect(chunks(during, group: 1) == chunks(before, group: 1))
            #expect(zip(chunks(during, group: 2), chunks(before, group: 2)).allSatisfy { $0 >= $1 + 8 })

            try await cluster.lab.heal("a1", "m")
            let healthy = await cluster.harness.eventually(within: 15) {
                (try? await cluster.status())?.groups.allSatisfy { $0.state == .healthy } ?? false
            }
            let after = try? await cluster.status()
            #expect(healthy, "groups after the partition healed: \(String(describing: after?.groups.map(\.state)))")
            _ = try await cluster.bench(blobs(seed: 3000) + ["--url", cluster.registries[0], "--phase", "push"])
            // Everything acknowledged before, during and after comes back intact, through either imageserver.
            for (seed, url) in [(1000, 1), (2000, 0), (3000, 1)] {
                let output = try await cluster.bench(blobs(seed: seed) + ["--url", cluster.registries[url], "--phase", "pull"])
                #expect(output.contains("4 digests verified"), "\(output)")
            }
        }
    }
}

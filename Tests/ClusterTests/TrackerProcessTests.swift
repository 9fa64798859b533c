import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// `speedy tracker` as the binary runs it: its flags, its guards, and its heartbeats to a
    /// master (in process, TrackerTests covers the routes themselves).
    @Suite("speedy tracker as a process", .serialized)
    struct TrackerProcessTests {
        @Test func badFlagsExitTwoWithAClearMessage() async throws {
            let dir = try TemporaryDirectory("tracker-flags")
            defer { dir.remove() }
            let good = dir.path + "/peer.secret"
            try SecretFile.write(ClusterSecret.generate().value + "\n", to: good)
            let weak = dir.path + "/weak.secret"
            try SecretFile.write("short\n", to: weak)
            let cases: [([String], String)] = [
                ([], "--peer-secret-file"),
                (["--peer-secret-file", dir.path + "/missing"], "cannot read it"),
                (["--peer-secret-file", weak], "at least 16 printable characters"),
                (["--peer-secret-file", good, "--announce-interval", "1500ms"], "whole seconds"),
                (["--peer-secret-file", good, "--listen", "127.0.0.1:0"], "--listen needs a port"),
                (["--peer-secret-file", good, "--listen", "nowhere"], "--listen"),
            ]
            for (arguments, message) in cases {
                let run = try await ClusterHarness.run(ClusterHarness.binDirectory + "/speedy", ["tracker"] + arguments)
                #expect(run.status == 2, "\(arguments): \(run.output)")
                #expect(run.output.contains(message), "\(arguments): \(run.output)")
            }
        }

        @Test func aTrackerGuardsItsPortAndHeartbeatsToTheMasterUntilItStops() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let master = try cluster.startMaster()
            let secretFile = cluster.root + "/peer.secret"
            try SecretFile.write(ClusterSecret.generate().value + "\n", to: secretFile)
            let port = ClusterHarness.freePort()
            let tracker = try cluster.start("tracker", ["tracker", "--listen", "127.0.0.1:\(port)", "--peer-secret-file", secretFile, "--master", master.url])
            let url = "http://127.0.0.1:\(port)"
            let anonymous = ServiceClient(baseURL: url, transport: .plain)
            let ready = await cluster.eventually(within: 20) { (try? await anonymous.send(.GET, "/readyz"))?.status == 200 }
            #expect(ready, "\(cluster.log("tracker"))")

            // The swarm wants a peer signature, /metrics the cluster secret; neither takes the other.
            #expect(try await anonymous.send(.GET, "/v1/swarm").status == 401)
            #expect(try await anonymous.send(.GET, "/metrics").status == 401)
            let withSecret = ServiceClient(baseURL: url, transport: ClusterHarness.transport)
            #expect(try await withSecret.send(.GET, "/v1/swarm").status == 401)
            let metrics = try await withSecret.send(.GET, "/metrics")
            #expect(metrics.status == 200)
            #expect(String(buffer: metrics.body).contains("speedy_tracker_agents 0"))

            let masterClient = MasterClient(baseURL: master.url, transport: ClusterHarness.transport)
            let id = "tracker@127.0.0.1:\(port)"
            let joined = await cluster.eventually(within: 10) {
                (try? await masterClient.events())?.contains { $0.kind == "role-joined" && $0.message.contains("tracker \(id) joined") } ?? false
            }
            #expect(joined, "\(cluster.log("master"))")

            tracker.terminate()
            await tracker.exited()
            #expect(tracker.terminationStatus == 0, "\(cluster.log("tracker"))")
            let left = await cluster.eventually(within: 10) {
                (try? await masterClient.events())?.contains { $0.kind == "role-left" && $0.message.contains(id) } ?? false
            }
            #expect(left, "a tracker stopped cleanly leaves the master's map at once\n\(cluster.log("master"))")
        }
    }
}

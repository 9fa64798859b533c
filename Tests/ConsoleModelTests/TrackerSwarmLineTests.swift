import ConsoleModel
import SpeedyCore
import Testing

/// The front pane's swarm line: node agents as their trackers report them through the master.
@Suite("Console swarm line")
struct TrackerSwarmLineTests {
    func tracker(_ id: String, status: RoleStatus = .up, swarm: SwarmSummary?) -> RoleSnapshot {
        var role = RoleSnapshot(
            id: id, addr: "10.0.0.9:6790", status: status, lastHeartbeatAgeMs: 200, version: "0.15.0", uptimeMs: 60_000, ready: true,
            notReadyReason: nil, requestsPerSec: 0, clientErrorsPerSec: 0, serverErrorsPerSec: 0, bytesInPerSec: 0, bytesOutPerSec: 0,
            openUploads: 0, residentBytes: 0)
        role.swarm = swarm
        return role
    }

    func swarm(agents: Int, served: Double, announces: Double, lookups: Double) -> SwarmSummary {
        SwarmSummary(agents: agents, blobs: 3, servedBytes: 0, servedBytesPerSecond: served, announcesPerSecond: announces, lookupsPerSecond: lookups)
    }

    @Test func oneTrackerShowsAgentsServedBytesAndItsRates() {
        let line = Dashboard(glyphs: .ascii).swarmLine([tracker("t1", swarm: swarm(agents: 8, served: 23.1 * 1_048_576, announces: 120.4, lookups: 300))])
        #expect(line == "agents 8 | peers serve 23.1 MiB/s | tracker 120 announces/s, 300 lookups/s")
    }

    @Test func quarantinedAgentsAreCountedOnceAcrossTrackers() {
        var first = swarm(agents: 5, served: 0, announces: 1, lookups: 1)
        first.quarantined = ["liar", "other"]
        var second = swarm(agents: 3, served: 0, announces: 1, lookups: 1)
        second.quarantined = ["liar"]
        let line = Dashboard(glyphs: .ascii).swarmLine([tracker("t1", swarm: first), tracker("t2", swarm: second)])
        #expect(line == "agents 8 (2 quarantined) | peers serve 0 B/s | 2 trackers 2 announces/s, 2 lookups/s")
    }

    @Test func severalTrackersAreSummedAndSilentOnesLeftOut() {
        let trackers = [
            tracker("t1", swarm: swarm(agents: 5, served: 1024, announces: 10, lookups: 20)),
            tracker("t2", swarm: swarm(agents: 3, served: 1024, announces: 5, lookups: 5)),
            tracker("t3", status: .down, swarm: swarm(agents: 100, served: 1_073_741_824, announces: 1000, lookups: 1000)),
        ]
        #expect(Dashboard(glyphs: .ascii).swarmLine(trackers) == "agents 8 | peers serve 2.00 KiB/s | 2 trackers 15 announces/s, 25 lookups/s")
    }

    @Test func noTrackerNoLineAndTheFrontPaneShowsItWhenOneReports() {
        #expect(Dashboard(glyphs: .ascii).swarmLine([]) == nil)
        #expect(Dashboard(glyphs: .ascii).swarmLine([tracker("old", swarm: nil)]) == nil, "a role without a swarm is no tracker")
        var state = ConsoleState(master: "http://127.0.0.1:8099")
        state.snapshot = snapshot([(1, [member("a"), member("b"), member("c")])])
        state.updatedAtMs = 0
        let without = Dashboard(glyphs: .ascii).render(state, width: 120, height: 40, nowMs: 0).map(\.text).joined(separator: "\n")
        #expect(!without.contains("swarm"))
        state.trackers = [tracker("t1", swarm: swarm(agents: 2, served: 0, announces: 1, lookups: 0))]
        let with = Dashboard(glyphs: .ascii).render(state, width: 120, height: 40, nowMs: 0).map(\.text).joined(separator: "\n")
        #expect(with.contains(" swarm agents 2 | peers serve 0 B/s | tracker 1 announces/s, 0 lookups/s"))
    }
}

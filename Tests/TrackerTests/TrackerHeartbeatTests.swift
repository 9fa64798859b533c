import Foundation
import Logging
import SpeedyClients
import SpeedyCore
import Testing
import Tracker

@testable import ServerSupport

/// What a tracker tells the master: a role report of role `tracker` carrying its swarm, which
/// reports of other roles, and of older releases, do without.
@Suite("Tracker heartbeat")
struct TrackerHeartbeatTests {
    @Test func aTrackersReportCarriesItsSwarm() throws {
        let table = SwarmTable(interval: .seconds(15))
        let blob = try #require(Digest(parsing: "sha256:" + String(repeating: "0f", count: 32)))
        try table.announce(agent: "a1", address: "http://10.0.0.1:6791", full: true, blobs: [blob: .full(count: 4)], servedBytes: 4096)
        let heartbeat = RoleHeartbeat(
            role: .tracker, id: nil, master: MasterClient(baseURL: "http://127.0.0.1:1", transport: ClusterTransport(secret: nil)),
            tally: RequestTally(), readiness: ReadinessCheck { .ready }, logger: Logger(label: "test"), swarm: { table.summary() })
        #expect(heartbeat.report() == nil, "no report before the tracker listens")
        heartbeat.listening(at: HostPort(host: "127.0.0.1", port: 6790))
        let report = try #require(heartbeat.report())
        #expect(report.role == .tracker)
        #expect(report.id == "tracker@127.0.0.1:6790")
        #expect(report.swarm?.agents == 1)
        #expect(report.swarm?.blobs == 1)
        #expect(report.swarm?.servedBytes == 4096)
        let decoded = try WireJSON.decoder().decode(RoleReport.self, from: try WireJSON.encoder().encode(report))
        #expect(decoded == report)
    }

    @Test func otherRolesAndOlderReportsHaveNoSwarm() throws {
        let older = #"""
            {"role":"imageserver","id":"i1","addr":"10.0.0.2:6788","version":"0.14.0","uptimeMs":1,"requests":0,"clientErrors":0,
             "serverErrors":0,"bytesIn":0,"bytesOut":0,"openUploads":0,"residentBytes":0,"ready":true}
            """#
        let report = try WireJSON.decoder().decode(RoleReport.self, from: Data(older.utf8))
        #expect(report.swarm == nil)
        let encoded = String(decoding: try WireJSON.encoder().encode(report), as: UTF8.self)
        #expect(!encoded.contains("swarm"), "a role without a swarm sends no field an older master would not know")
        #expect(FrontRole(rawValue: "tracker") == .tracker)
    }
}

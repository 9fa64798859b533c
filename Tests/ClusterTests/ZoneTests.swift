import Foundation
import SpeedyTestSupport
import SpeedyClients
import SpeedyCore
import Testing

extension ProcessSuites {
    /// Failure zones on real processes: a master without `--allow-same-zone` keeps a group's
    /// members in different zones (`speedy chunkserver --zone`).
    @Suite("Zones", .serialized)
    struct ZoneTests {
        @Test func aServerWhoseZoneIsTakenIsRefusedUntilItMoves() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, _) = try cluster.startMaster(allowSameZone: false)
            let master = MasterClient(baseURL: masterURL, transport: ClusterHarness.transport)
            _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs1", arguments: ["--zone", "a"])
            _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs2", arguments: ["--zone", "b"])
            // cs2 first, so it is the one in zone b.
            let twoMembers = await cluster.eventually(within: 20) {
                let members = (try? await master.snapshot())?.groups.first?.members ?? []
                return members.map(\.id) == ["cs1", "cs2"] && members.allSatisfy { $0.status == .readWrite }
            }
            #expect(twoMembers, "\(cluster.roleLogs(["master"]))")
            let port3 = ClusterHarness.freePort()
            let (addr3, cs3) = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs3", port: port3, arguments: ["--zone", "b"])

            // cs3 is refused: the master says why once, in its event log, however often cs3 asks.
            func refusals() async -> [ClusterEvent] {
                ((try? await master.events(after: 0, limit: 1000)) ?? []).filter { $0.kind == "zone-conflict" }
            }
            let refused = await cluster.eventually(within: 20) { await !refusals().isEmpty }
            #expect(refused, "\(cluster.roleLogs(["master", "cs3"]))")
            let logged = await cluster.eventually(within: 10) { cluster.log("cs3").contains("ZONE_CONFLICT") }
            #expect(logged, "\(cluster.roleLogs(["cs3"]))")
            try await Task.sleep(for: .seconds(2))  // eight more heartbeats from cs3
            let events = await refusals()
            #expect(events.count == 1, "\(events.map(\.message))")
            let message = try #require(events.first).message
            #expect(message.contains("cs3") && message.contains("group 1") && message.contains("zone b") && message.contains("cs2"), "\(message)")
            #expect(events.first?.serverId == "cs3" && events.first?.group == 1)
            let snapshot = try await master.snapshot()
            #expect(!snapshot.groups.flatMap(\.members).contains { $0.id == "cs3" })
            #expect(snapshot.groups.first?.members.map(\.zone) == ["a", "b"])
            // The chunkserver's log says why too, and that it keeps asking.
            let cs3Log = cluster.log("cs3")
            #expect(cs3Log.contains("ZONE_CONFLICT") && cs3Log.contains("zone b") && cs3Log.contains("asking again"), "\(cs3Log)")

            // Registering it by hand is refused the same way.
            do {
                _ = try await master.addServer(ServerRegistration(id: "cs3", group: 1, addr: addr3, zone: "b"))
                Issue.record("registered cs3 in a taken zone")
            } catch {
                guard case .status(_, 409, let body?) = error else { throw error }
                #expect(body.internalCode == .zoneConflict && body.message.contains("cs2"), "\(body)")
            }

            // Moved to another zone (the same data directory, so the same server), it joins.
            cs3.terminate()
            await cs3.exited()
            _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs3", port: port3, arguments: ["--zone", "c"])
            let joined = await cluster.eventually(within: 20) {
                guard let group = try? await master.snapshot().groups.first else { return false }
                return group.state == .healthy && group.members.map(\.id) == ["cs1", "cs2", "cs3"] && group.members.map(\.zone) == ["a", "b", "c"]
            }
            #expect(joined, "\(cluster.roleLogs(["master", "cs3"]))")
        }
    }
}

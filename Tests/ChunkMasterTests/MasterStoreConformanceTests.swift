import ChunkMaster
import Foundation
import Logging
import ServerSupport
import SpeedyCore
import SpeedyPostgres
import SpeedyTestSupport
import Testing

/// The contract of ``MasterStore``, checked against SQLite and PostgreSQL: both must behave the
/// same. Each test opens two stores on one database, as two masters (or a master and its
/// restart) would.
@Suite("MasterStore conformance")
struct MasterStoreConformanceTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite, postgres
        var testDescription: String { rawValue }
    }

    /// Runs `body` with two stores on one fresh database.
    func withStores(_ kind: Kind, _ body: (any MasterStore, any MasterStore) async throws -> Void) async throws {
        switch kind {
        case .postgres:
            let url = try PostgresURL(await PostgresTestServer.freshDatabase())
            let first = try await PostgresMasterStore(url: url, logger: Logger(label: "test"))
            let second = try await PostgresMasterStore(url: url, logger: Logger(label: "test"))
            do {
                try await body(first, second)
            } catch {
                await first.close()
                await second.close()
                throw error
            }
            await first.close()
            await second.close()
        case .sqlite:
            let temporary = try TemporaryDirectory("master-store")
            defer { temporary.remove() }
            let dir = temporary.path
            try await body(try SQLiteMasterStore(path: dir + "/master.sqlite"), try SQLiteMasterStore(path: dir + "/master.sqlite"))
        }
    }

    @Test(arguments: Kind.allCases)
    func serversGroupsAndSettingsAreReadBackAsSaved(kind: Kind) async throws {
        try await withStores(kind) { store, other in
            try await store.save([
                .groupAdded(group: 7), .serverJoined(id: "a", group: 1, addr: "h:1"), .serverAdded(id: "b", group: 1, addr: "h:2"),
                .serverJoined(id: "c", group: 2, addr: "h:3"), .serverUp(id: "a", group: 1),
            ], fence: nil)
            try await store.save([
                .addressChanged(id: "a", group: 1, from: "h:1", to: "h:9"), .statusSet(id: "b", group: 1, to: .readOnly, why: "operator"),
                .fenced(id: "c", group: 2, by: "d"), .groupRemoved(group: 7),
            ], fence: nil)
            #expect(try await other.groups() == [1, 2])
            #expect(
                try await other.servers() == [
                    StoredServer(id: "a", group: 1, addr: "h:9"), StoredServer(id: "b", group: 1, addr: "h:2", setStatus: .readOnly),
                    StoredServer(id: "c", group: 2, addr: "h:3", setStatus: .offline, fencedBy: "d"),
                ])
            try await store.save([.serverRetired(id: "c", group: 2), .statusSet(id: "b", group: 1, to: nil, why: "operator")], fence: nil)
            // A server joining a removed group brings it back.
            try await store.save([.serverJoined(id: "e", group: 7, addr: "h:5")], fence: nil)
            let servers = try await other.servers()
            #expect(servers.first { $0.id == "c" } == StoredServer(id: "c", group: 2, addr: "h:3", retired: true))
            #expect(servers.first { $0.id == "b" }?.setStatus == nil)
            #expect(try await other.groups() == [1, 2, 7])
        }
    }

    @Test(arguments: Kind.allCases)
    func eventsComeBackInOrderAndPage(kind: Kind) async throws {
        try await withStores(kind) { store, other in
            for i in 0..<5 {
                try await (i.isMultiple(of: 2) ? store : other).recordEvent(kind: "k\(i)", serverId: i == 1 ? "s" : nil, group: i == 2 ? 3 : nil, message: "m\(i)")
            }
            let all = try await other.events(after: 0, limit: 100)
            #expect(all.map(\.kind) == ["k0", "k1", "k2", "k3", "k4"])
            #expect(all[1].serverId == "s" && all[2].group == 3 && all[0].group == nil)
            #expect(try await store.events(after: all[2].id, limit: 1).map(\.message) == ["m3"])
            #expect(try await store.latestEvents(limit: 2).map(\.kind) == ["k4", "k3"])
        }
    }

    @Test(arguments: Kind.allCases)
    func fileIdReservationsNeverOverlapWhoeverMakesThem(kind: Kind) async throws {
        try await withStores(kind) { store, other in
            let ranges = try await withThrowingTaskGroup(of: Range<UInt64>.self) { group in
                for i in 0..<40 {
                    group.addTask { try await (i.isMultiple(of: 2) ? store : other).reserveFileIds(count: UInt64(1 + i % 7 * 100), fence: nil) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
            #expect(sorted.first!.lowerBound >= 1, "file id 0 is never handed out")
            for (a, b) in zip(sorted, sorted.dropFirst()) { #expect(a.upperBound <= b.lowerBound, "\(a) overlaps \(b)") }
            let asked: [Int] = (0..<40).map { 1 + $0 % 7 * 100 }
            let got: [Int] = ranges.map(\.count)
            #expect(got.reduce(0, +) == asked.reduce(0, +))
            await #expect(throws: (any Error).self) { try await store.reserveFileIds(count: 0, fence: nil) }
        }
    }

    @Test(arguments: Kind.allCases)
    func oneMasterLeadsAndAStandbyTakesOverWhenTheLeaseRunsOut(kind: Kind) async throws {
        try await withStores(kind) { store, other in
            // A long lease, so that a slow machine cannot run it out between steps…
            let long = Duration.seconds(60)
            guard case .leader(let first) = try await store.claimLeadership(holder: "m1", url: "http://m1", ttl: long) else {
                Issue.record("the first claim of a free lease must lead")
                return
            }
            #expect(try await other.claimLeadership(holder: "m2", url: "http://m2", ttl: long) == .standby(leaderURL: "http://m1"))
            // Renewing keeps the term; a fenced reservation by the holder works, by another not.
            #expect(try await store.claimLeadership(holder: "m1", url: "http://m1", ttl: long) == .leader(term: first))
            let before = try await store.reserveFileIds(count: 10, fence: LeaderTerm(holder: "m1", term: first))
            try await store.save([.groupAdded(group: 5)], fence: LeaderTerm(holder: "m1", term: first))
            await #expect(throws: MasterStoreError.self) {
                try await other.save([.groupAdded(group: 6)], fence: LeaderTerm(holder: "m2", term: first))
            }
            #expect(try await other.groups() == [5], "a fenced-off save writes nothing")
            await #expect(throws: MasterStoreError.self) {
                try await other.reserveFileIds(count: 10, fence: LeaderTerm(holder: "m2", term: first))
            }
            // …then a short one, left to run out: the standby takes it with the next term, and the
            // old term is fenced off.
            #expect(try await store.claimLeadership(holder: "m1", url: "http://m1", ttl: .milliseconds(200)) == .leader(term: first))
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await other.claimLeadership(holder: "m2", url: "http://m2", ttl: long) == .leader(term: first + 1))
            #expect(try await store.claimLeadership(holder: "m1", url: "http://m1", ttl: long) == .standby(leaderURL: "http://m2"))
            await #expect(throws: MasterStoreError.self) {
                try await store.reserveFileIds(count: 10, fence: LeaderTerm(holder: "m1", term: first))
            }
            let after = try await other.reserveFileIds(count: 10, fence: LeaderTerm(holder: "m2", term: first + 1))
            #expect(after.lowerBound >= before.upperBound)
            // A resigned lease is free at once.
            try await other.resign(holder: "m2")
            #expect(try await store.claimLeadership(holder: "m1", url: "http://m1", ttl: long) == .leader(term: first + 2))
        }
    }

    @Test(arguments: Kind.allCases)
    func twoMastersRacingForAFreeLeaseGiveOneLeader(kind: Kind) async throws {
        try await withStores(kind) { store, other in
            for round in 0..<5 {
                let (a, b) = ("a\(round)", "b\(round)")
                let outcomes = try await withThrowingTaskGroup(of: (String, Leadership).self) { group in
                    group.addTask { (a, try await store.claimLeadership(holder: a, url: "http://a", ttl: .seconds(60))) }
                    group.addTask { (b, try await other.claimLeadership(holder: b, url: "http://b", ttl: .seconds(60))) }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let leaders = outcomes.filter { if case .leader = $0.1 { true } else { false } }.map(\.0)
                #expect(leaders.count == 1, "round \(round): \(outcomes)")
                // The winner gives the lease up for the next round.
                for leader in leaders { try await store.resign(holder: leader) }
            }
        }
    }
}

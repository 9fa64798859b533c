import ChunkMaster
import Foundation
import ServerSupport
import SpeedyCore
import Synchronization
import Testing
import SpeedyTestSupport

@Suite("Master leadership")
struct MasterLeadershipTests {
    struct LoadFailed: Error {}

    func withStores(_ body: (any MasterStore, any MasterStore) async throws -> Void) async throws {
        let temporary = try TemporaryDirectory("leadership")
        defer { temporary.remove() }
        let dir = temporary.path
        try await body(try SQLiteMasterStore(path: dir + "/master.sqlite"), try SQLiteMasterStore(path: dir + "/master.sqlite"))
    }

    @Test func transitionsAreReportedOnceAndAFailedTakeoverGivesTheLeaseBack() async throws {
        try await withStores { store, other in
            let one = MasterLeadership(mode: .shared(ttl: .seconds(30)), holder: "one")
            let two = MasterLeadership(mode: .shared(ttl: .seconds(30)), holder: "two")
            let loads = Mutex(0)
            let load: (LeaderTerm) async throws -> Void = { _ in loads.withLock { $0 += 1 } }

            #expect(await one.claim(store: store, url: "http://one", becomeLeader: load) == .became(LeaderTerm(holder: "one", term: 1)))
            #expect(one.isLeader && one.currentTerm?.term == 1)
            #expect(await one.claim(store: store, url: "http://one", becomeLeader: load) == nil, "a renewal is no transition")
            #expect(await two.claim(store: other, url: "http://two", becomeLeader: load) == nil)
            #expect(!two.isLeader && two.leaderURL == "http://one")
            #expect(loads.withLock { $0 } == 1, "the map is loaded once per term")

            // One steps down cleanly: two takes over at its next claim, and one hears it lost.
            await one.resign(store: store)
            #expect(!one.isLeader)
            #expect(await two.claim(store: other, url: "http://two", becomeLeader: load) == .became(LeaderTerm(holder: "two", term: 2)))
            #expect(await one.claim(store: store, url: "http://one", becomeLeader: load) == nil, "one had already stopped leading")
            #expect(one.leaderURL == "http://two")

            // A takeover whose map cannot be loaded gives the lease straight back.
            await two.resign(store: other)
            let failed = await one.claim(store: store, url: "http://one") { _ in throw LoadFailed() }
            guard case .lost(let reason)? = failed else {
                Issue.record("expected the failed takeover to be reported, got \(String(describing: failed))")
                return
            }
            #expect(reason.contains("could not load"))
            #expect(!one.isLeader)
            #expect(await two.claim(store: other, url: "http://two", becomeLeader: load) == .became(LeaderTerm(holder: "two", term: 4)))
            // A leader that finds another holding the lease reports losing it.
            let three = MasterLeadership(mode: .shared(ttl: .seconds(30)), holder: "three")
            #expect(await three.claim(store: store, url: "http://three", becomeLeader: load) == nil)
            try await other.resign(holder: "two")
            #expect(await three.claim(store: store, url: "http://three", becomeLeader: load) == .became(LeaderTerm(holder: "three", term: 5)))
            guard case .lost? = await two.claim(store: other, url: "http://two", becomeLeader: load) else {
                Issue.record("two must hear that it no longer leads")
                return
            }
            #expect(!two.isLeader)
        }
    }

    @Test func aSoleMasterAlwaysLeadsWithoutAFence() async throws {
        let sole = MasterLeadership(mode: .sole)
        #expect(sole.isLeader && sole.currentTerm == nil)
    }

    /// What the bodies under the lock saw.
    final class Trace: Sendable {
        let order = Mutex<[Int]>([])
        let inside = Mutex(0)
        let overlapped = Mutex(false)

        func body(_ i: Int, pause: Duration) async {
            if inside.withLock({ $0 += 1; return $0 }) > 1 { overlapped.withLock { $0 = true } }
            try? await Task.sleep(for: pause)
            order.withLock { $0.append(i) }
            inside.withLock { $0 -= 1 }
        }
    }

    @Test func theSerialLockRunsBodiesOneAtATimeInTheOrderTheyAsked() async throws {
        let lock = AsyncSerialLock()
        let trace = Trace()
        // The first body holds the lock across awaits while the others queue.
        let first = Task { await lock.run { await trace.body(0, pause: .milliseconds(100)) } }
        try await Task.sleep(for: .milliseconds(20))
        var others: [Task<Void, Never>] = []
        for i in 1...20 {
            others.append(Task { await lock.run { await trace.body(i, pause: .milliseconds(1)) } })
            try await Task.sleep(for: .milliseconds(2))
        }
        await first.value
        for task in others { await task.value }
        #expect(!trace.overlapped.withLock { $0 })
        #expect(trace.order.withLock { $0 } == Array(0...20))
        // A body that throws releases the lock.
        struct Boom: Error {}
        await #expect(throws: Boom.self) { try await lock.run { () async throws(Boom) in throw Boom() } }
        #expect(await lock.run { 7 } == 7)
    }
}

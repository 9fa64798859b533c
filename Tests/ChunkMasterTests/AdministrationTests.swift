import ServerSupport
import ChunkMaster
import Foundation
import Logging
import SpeedyCore
import Testing
import SpeedyTestSupport

func emptyReport(_ id: String, group: UInt32 = 1) -> HeartbeatReport {
    var r = report(id, group: group)
    r.chunkCount = 0
    r.chunkBytes = 0
    return r
}

@Suite("Cluster administration")
struct AdministrationTests {
    @Test func aTransferringReplacementKeepsAGroupWritable() {
        #expect(GroupState.derive(from: [.readWrite, .down, .readWrite, .transferring]) == .recovering)
        #expect(GroupState.derive(from: [.readWrite, .offline, .readWrite, .transferring]) == .recovering)
        #expect(GroupState.derive(from: [.readWrite, .readWrite, .readWrite, .transferring]) == .recovering)
        #expect(GroupState.recovering.isWritable)
        // Two members gone and one replacement: not enough copies.
        #expect(GroupState.derive(from: [.readWrite, .down, .down, .transferring]) == .degraded)
        // Any present member that would miss writes makes the group unwritable.
        #expect(GroupState.derive(from: [.readOnly, .down, .readWrite, .transferring]) == .degraded)
        #expect(GroupState.derive(from: [.readWrite, .down, .error, .transferring]) == .degraded)
        #expect(GroupState.derive(from: [.readWrite, .offline, .readWrite]) == .degraded)
        // Nothing readable: down, whatever is transferring.
        #expect(GroupState.derive(from: [.down, .transferring]) == .down)
        #expect(!ServerStatus.transferring.isReadable)
        #expect(ServerStatus.transferring.takesWrites)
    }

    @Test func anEmptyNewcomerToAGroupWithDataJoinsTransferring() {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        #expect(map.state(of: 1) == .healthy)
        // A replica with chunks that the master did not know joins as it reports.
        _ = map.apply(report("known"), nowMs: 5)
        #expect(map.members["known"]?.status == .readWrite)
        // An empty one is filled first.
        let changes = map.apply(emptyReport("new"), nowMs: 10)
        #expect(changes.contains(.statusSet(id: "new", group: 1, to: .transferring, why: "it is empty and its group holds chunks")))
        #expect(changes.contains(.groupState(group: 1, from: .healthy, to: .recovering)))
        #expect(map.members["new"]?.status == .transferring)
        #expect(map.members["new"]?.setStatus == .transferring)
        // Its later heartbeats change nothing and log nothing.
        #expect(map.apply(emptyReport("new"), nowMs: 20).isEmpty)
        // An empty newcomer to an empty group is an ordinary member.
        #expect(map.apply(emptyReport("x", group: 2), nowMs: 30).contains(.groupState(group: 2, from: nil, to: .healthy)))
        #expect(map.members["x"]?.status == .readWrite)
    }

    @Test func aReplacementFencesTheDeadMemberSoItCannotComeBackStale() {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        _ = map.apply(report("a"), nowMs: 5000)
        _ = map.apply(report("bb"), nowMs: 5000)
        _ = map.expire(nowMs: 5000, downAfterMs: 3000)
        #expect(map.members["ccc"]?.status == .down)
        #expect(map.state(of: 1) == .degraded)
        let changes = map.apply(emptyReport("new"), nowMs: 5001)
        #expect(changes.contains(.fenced(id: "ccc", group: 1, by: "new")))
        #expect(map.members["ccc"]?.fencedBy == "new")
        #expect(map.state(of: 1) == .recovering)
        // The dead member returns, having missed every write since: it stays out.
        _ = map.apply(report("ccc", uptimeMs: 10), nowMs: 6000)
        #expect(map.members["ccc"]?.status == .offline)
        #expect(map.state(of: 1) == .recovering)
    }

    @Test func fencingSparesMembersNotYetSeenAndCatchesOnesLostLater() throws {
        // After a master restart, remembered members look down until they report: not fenced.
        var restarted = ClusterMap()
        for id in ["a", "bb"] { restarted.restore(id: id, group: 1, addr: "127.0.0.1:1") }
        let registered = try restarted.register(ServerRegistration(id: "new", group: 1, addr: "127.0.0.1:2", status: .transferring), allowSameZone: true)
        #expect(!registered.contains { if case .fenced = $0 { true } else { false } })
        #expect(restarted.members["a"]?.setStatus == nil)

        // A member lost after the replacement began is fenced for it when it goes down.
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        _ = map.apply(emptyReport("new"), nowMs: 10)
        #expect(map.members["new"]?.status == .transferring)
        for id in ["a", "bb", "new"] { _ = map.apply(report(id, uptimeMs: 5000), nowMs: 5000) }
        let changes = map.expire(nowMs: 5000, downAfterMs: 3000)
        #expect(changes.contains(.fenced(id: "ccc", group: 1, by: "new")))
        #expect(map.members["ccc"]?.status == .offline)
        // While it stays down an operator's "rw" does not let it back: it is fenced again.
        _ = try map.setStatus(of: "ccc", to: .readWrite)
        #expect(map.members["ccc"]?.status == .offline)
        // Once it is back (repaired), the operator's word clears the fence.
        _ = map.apply(report("ccc", uptimeMs: 10), nowMs: 6000)
        #expect(map.members["ccc"]?.status == .offline)
        _ = try map.setStatus(of: "ccc", to: .readWrite)
        #expect(map.members["ccc"]?.fencedBy == nil)
        #expect(map.members["ccc"]?.status == .readWrite)
    }

    @Test func aSecondMemberLostDuringARecoveryIsNotFenced() {
        // ccc is dead and fenced; new is being filled; then bb drops out for a while. The group is
        // no longer writable, so bb misses nothing and must not be fenced.
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        for id in ["a", "bb"] { _ = map.apply(report(id, uptimeMs: 5000), nowMs: 5000) }
        _ = map.expire(nowMs: 5000, downAfterMs: 3000)
        _ = map.apply(emptyReport("new"), nowMs: 5001)
        #expect(map.members["ccc"]?.fencedBy == "new")
        _ = map.apply(report("a", uptimeMs: 9000), nowMs: 9000)
        _ = map.apply(report("new", uptimeMs: 9000), nowMs: 9000)
        let changes = map.expire(nowMs: 9000, downAfterMs: 3000)
        #expect(changes.contains(.serverDown(id: "bb", group: 1, silentMs: 4000)))
        #expect(map.members["bb"]?.status == .down)
        #expect(map.members["bb"]?.fencedBy == nil)
        #expect(map.state(of: 1) == .degraded)
    }

    @Test func membersNeverSeenByThisMasterAreFencedOnceItHasRunPastTheTimeout() throws {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { map.restore(id: id, group: 1, addr: "127.0.0.1:1") }
        _ = map.apply(report("a"), nowMs: 100)
        _ = map.apply(report("bb"), nowMs: 100)
        _ = map.apply(emptyReport("new"), nowMs: 200)
        #expect(map.state(of: 1) == .recovering)
        #expect(map.members["ccc"]?.status == .down)  // not fenced yet: it may just be slow to report
        _ = map.apply(report("a", uptimeMs: 4000), nowMs: 3100)
        _ = map.apply(report("bb", uptimeMs: 4000), nowMs: 3100)
        _ = map.apply(report("new", uptimeMs: 4000), nowMs: 3100)
        let changes = map.expire(nowMs: 3100, downAfterMs: 3000)
        #expect(changes.contains(.fenced(id: "ccc", group: 1, by: "new")))
    }

    @Test func operatorsSetStatusesAndRemoveOnlyAbsentServers() throws {
        var map = ClusterMap()
        for id in ["a", "bb", "ccc"] { _ = map.apply(report(id), nowMs: 0) }
        #expect(try map.setStatus(of: "a", to: .readOnly).contains(.groupState(group: 1, from: .healthy, to: .degraded)))
        #expect(map.members["a"]?.status == .readOnly)
        #expect(try map.setStatus(of: "a", to: .readOnly).isEmpty)
        _ = try map.setStatus(of: "a", to: .readWrite)
        #expect(map.members["a"]?.status == .readWrite)
        #expect(map.state(of: 1) == .healthy)
        #expect(throws: ClusterMap.AdminError.notSettable(.down)) { try map.setStatus(of: "a", to: .down) }
        #expect(throws: ClusterMap.AdminError.unknownServer("zz")) { try map.setStatus(of: "zz", to: .offline) }
        #expect(throws: ClusterMap.AdminError.stillServing("bb", .readWrite)) { try map.retire("bb") }

        _ = try map.setStatus(of: "bb", to: .offline)
        #expect(map.members["bb"]?.status == .offline)
        #expect(map.state(of: 1) == .degraded)
        let removed = try map.retire("bb")
        #expect(removed.first == .serverRetired(id: "bb", group: 1))
        #expect(map.state(of: 1) == .healthy)
        #expect(map.isRetired("bb"))
        #expect(throws: ClusterMap.AdminError.serverRetired("bb")) { try map.register(ServerRegistration(id: "bb", group: 1, addr: "127.0.0.1:1")) }

        #expect(try map.addGroup(9) == [.groupAdded(group: 9)])
        #expect(throws: ClusterMap.AdminError.groupExists(9)) { try map.addGroup(9) }
        #expect(map.snapshot(master: "m", nowMs: 0, wallClockMs: 0).groups.map(\.id) == [1, 9])
        _ = try map.register(ServerRegistration(id: "r", group: 9, addr: "127.0.0.1:2", status: .transferring))
        #expect(map.members["r"]?.setStatus == .transferring)
        #expect(map.members["r"]?.status == .down)
    }

    @Test func settingsAndRemovalsSurviveAMasterRestart() async throws {
        let temporary = try TemporaryDirectory("admin")
        defer { temporary.remove() }
        let dir = temporary.path
        var configuration = ChunkMasterConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), dataDirectory: dir, security: .insecure)
        configuration.allowSameZone = true  // every report is from 127.0.0.1
        let master = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        for id in ["a", "bb", "ccc"] { _ = try await master.heartbeat(report(id, group: 4)) }
        _ = try await master.heartbeat(emptyReport("new", group: 4))
        _ = try await master.administer(group: 4) { (map: inout ClusterMap) throws(ClusterMap.AdminError) in try map.setStatus(of: "ccc", to: .offline) }
        _ = try await master.administer(group: 4) { (map: inout ClusterMap) throws(ClusterMap.AdminError) in try map.retire("ccc") }
        _ = try await master.administer(group: 4) { (map: inout ClusterMap) throws(ClusterMap.AdminError) in try map.setStatus(of: "a", to: .readOnly) }
        _ = try await master.administer(group: 8) { (map: inout ClusterMap) throws(ClusterMap.AdminError) in try map.addGroup(8) }

        let restarted = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        let groups = restarted.snapshot().groups
        #expect(groups.map(\.id) == [4, 8])
        #expect(groups[0].members.map(\.id) == ["a", "bb", "new"])
        #expect(groups[0].members.map(\.setStatus) == [.readOnly, nil, .transferring])
        await #expect(throws: ClusterMap.AdminError.serverRetired("ccc")) { _ = try await restarted.heartbeat(report("ccc", group: 4)) }
        let kinds = try await SQLiteMasterStore(path: dir + "/master.sqlite").events(after: 0, limit: 100).map(\.kind)
        #expect(kinds.contains("status-set"))
        #expect(kinds.contains("server-removed"))
        #expect(kinds.contains("group-added"))
    }
}

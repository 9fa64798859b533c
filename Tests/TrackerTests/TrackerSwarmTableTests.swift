import SpeedyCore
import Synchronization
import Testing

@testable import Tracker

/// The swarm table on its own, with a clock moved by hand: what a full and a partial announce do
/// to an agent's holdings, expiry after three intervals, the bounds, and the rates.
@Suite("Tracker swarm table")
struct TrackerSwarmTableTests {
    /// A monotonic clock tests set.
    final class ManualClock: Sendable {
        let ms = Mutex<Int64>(1_000_000)
        func advance(_ delta: Int64) { ms.withLock { $0 += delta } }
        var read: @Sendable () -> Int64 { { [self] in ms.withLock { $0 } } }
    }

    static func digest(_ n: Int) -> Digest { Digest(algorithm: .sha256, hex: String(repeating: String(n % 10), count: 64)) }

    static func field(_ count: Int, _ held: [Int]) -> ChunkBitfield {
        var field = ChunkBitfield(count: count)
        for index in held { field.insert(index) }
        return field
    }

    func holdings(of agent: String, _ digest: Digest, in table: SwarmTable) -> ChunkBitfield? {
        table.peers(of: digest, caller: "someone-else").first { $0.agent == agent }?.have
    }

    @Test func aPartialAnnounceMergesAnEmptyHoldingRemovesAndAFullOneReplaces() throws {
        let table = SwarmTable(interval: .seconds(15))
        let (a, b, c) = (Self.digest(1), Self.digest(2), Self.digest(3))
        try table.announce(agent: "n1", address: "http://10.0.0.1:6789", full: true, blobs: [a: Self.field(8, [0, 1]), b: .full(count: 4)], servedBytes: 0)
        try table.announce(agent: "n1", address: "http://10.0.0.1:6789", full: false, blobs: [a: Self.field(8, [0, 1, 2]), c: .full(count: 2)], servedBytes: 0)
        #expect(holdings(of: "n1", a, in: table) == Self.field(8, [0, 1, 2]))
        #expect(holdings(of: "n1", b, in: table) == .full(count: 4), "a partial announce keeps the blobs it does not name")
        #expect(holdings(of: "n1", c, in: table) == .full(count: 2))
        try table.announce(agent: "n1", address: "http://10.0.0.1:6789", full: false, blobs: [b: ChunkBitfield(count: 4)], servedBytes: 0)
        #expect(holdings(of: "n1", b, in: table) == nil, "a holding with nothing held is dropped")
        #expect(table.summary().blobs == 2)
        try table.announce(agent: "n1", address: "http://10.0.0.1:7000", full: true, blobs: [b: Self.field(4, [3])], servedBytes: 0)
        #expect(holdings(of: "n1", a, in: table) == nil, "a full announce replaces everything held before")
        #expect(holdings(of: "n1", c, in: table) == nil)
        let peers = table.peers(of: b, caller: "x")
        #expect(peers == [SwarmPeers.Peer(agent: "n1", address: "http://10.0.0.1:7000", have: Self.field(4, [3]), joined: 4)], "dropped and held again: joined anew")
        #expect(table.summary().blobs == 1)
    }

    @Test func theChunksInHandGoWithTheHoldingAndLeaveWithIt() throws {
        let table = SwarmTable(interval: .seconds(15))
        let blob = Self.digest(5)
        try table.announce(
            agent: "n1", address: "http://10.0.0.1:6789", full: true, blobs: [blob: Self.field(4, [0, 1, 2])],
            held: [blob: Self.field(4, [0])], servedBytes: 0)
        #expect(table.peers(of: blob, caller: "x").first?.held == Self.field(4, [0]))
        // A partial announce that says nothing of the chunks in hand no longer claims any.
        try table.announce(agent: "n1", address: "http://10.0.0.1:6789", full: false, blobs: [blob: Self.field(4, [0, 1, 2, 3])], servedBytes: 0)
        #expect(table.peers(of: blob, caller: "x").first?.held == nil)
        try table.announce(
            agent: "n1", address: "http://10.0.0.1:6789", full: false, blobs: [blob: .full(count: 4)], held: [blob: .full(count: 4)], servedBytes: 0)
        #expect(table.peers(of: blob, caller: "x").first?.held == .full(count: 4))
        try table.announce(agent: "n1", address: "http://10.0.0.1:6789", full: false, blobs: [blob: ChunkBitfield(count: 4)], held: [blob: .full(count: 4)], servedBytes: 0)
        #expect(table.peers(of: blob, caller: "x").isEmpty, "a holding with nothing held leaves with its chunks in hand")
        // The wire's check: in hand is a subset of held or claimed, of the same count.
        #expect(Self.field(4, [1]).isSubset(of: Self.field(4, [0, 1])))
        #expect(!Self.field(4, [2]).isSubset(of: Self.field(4, [0, 1])))
        #expect(!Self.field(8, [1]).isSubset(of: Self.field(4, [0, 1])))
    }

    /// The order agents joined a blob's swarm is the order of their first announces of it, the
    /// same in every lookup, kept across full announces and per blob.
    @Test func agentsAreNumberedInTheOrderTheyJoinABlob() throws {
        let table = SwarmTable(interval: .seconds(15))
        let (blob, other) = (Self.digest(6), Self.digest(7))
        for agent in ["late", "early", "middle"].reversed() {
            try table.announce(agent: agent, address: "http://\(agent):1", full: false, blobs: [blob: Self.field(4, [0])], servedBytes: 0)
        }
        try table.announce(agent: "late", address: "http://late:1", full: false, blobs: [other: Self.field(4, [1])], servedBytes: 0)
        let joined = { (agent: String) in table.peers(of: blob, caller: "x").first { $0.agent == agent }?.joined }
        #expect(joined("middle")! < joined("early")! && joined("early")! < joined("late")!)
        #expect(table.joined(blob, by: "late") == joined("late"))
        #expect(table.joined(other, by: "middle") == nil, "no number for a blob the agent does not hold")
        let before = joined("middle")
        try table.announce(agent: "middle", address: "http://middle:1", full: true, blobs: [blob: .full(count: 4)], servedBytes: 0)
        #expect(joined("middle") == before, "a full announce that still holds the blob keeps its place")
        try table.announce(agent: "middle", address: "http://middle:1", full: true, blobs: [other: .full(count: 4)], servedBytes: 0)
        #expect(table.joined(blob, by: "middle") == nil, "a full announce without the blob leaves its swarm")
        #expect(table.joined(other, by: "middle")! > table.joined(other, by: "late")!)
    }

    /// Two distinct reporters within the window quarantine an agent for ``SwarmTable/quarantineMs``;
    /// reports age out; the summary names the agents left out.
    @Test func twoReportersQuarantineAnAgentForAWhile() throws {
        let clock = ManualClock()
        let table = SwarmTable(interval: .seconds(15), now: clock.read)
        let blob = Self.digest(8)
        for agent in ["liar", "a", "b"] {
            try table.announce(agent: agent, address: "http://\(agent):1", full: true, blobs: [blob: .full(count: 4)], servedBytes: 0)
        }
        #expect(!table.report(by: "liar", accused: "liar"), "no one reports itself")
        #expect(!table.report(by: "a", accused: "liar"))
        #expect(!table.report(by: "a", accused: "liar"), "the same reporter twice is one reporter")
        // The first report ages out of the window before the second comes (the agents announce
        // on meanwhile).
        clock.advance(SwarmTable.reportWindowMs)
        for agent in ["liar", "a", "b"] {
            try table.announce(agent: agent, address: "http://\(agent):1", full: true, blobs: [blob: .full(count: 4)], servedBytes: 0)
        }
        #expect(!table.report(by: "b", accused: "liar"))
        #expect(table.report(by: "a", accused: "liar"))
        #expect(Set(table.peers(of: blob, caller: "x").map(\.agent)) == ["a", "b"])
        #expect(table.summary().quarantined == ["liar"])
        #expect(!table.report(by: "b", accused: "liar"), "already quarantined")
        clock.advance(SwarmTable.quarantineMs - 1)
        for agent in ["liar", "a", "b"] {
            try table.announce(agent: agent, address: "http://\(agent):1", full: true, blobs: [blob: .full(count: 4)], servedBytes: 0)
        }
        #expect(table.summary().quarantined == ["liar"])
        clock.advance(1)
        #expect(Set(table.peers(of: blob, caller: "x").map(\.agent)) == ["liar", "a", "b"], "the quarantine ends")
        #expect(table.summary().quarantined == [])
        // A full table of accused takes no new ones.
        var limits = SwarmTable.Limits()
        limits.accused = 1
        let small = SwarmTable(interval: .seconds(15), limits: limits, now: clock.read)
        #expect(!small.report(by: "a", accused: "x1"))
        #expect(!small.report(by: "a", accused: "x2"))
        #expect(!small.report(by: "b", accused: "x2"), "x2 was never kept")
        #expect(small.report(by: "b", accused: "x1"))
    }

    @Test func anAgentSilentForThreeIntervalsIsForgotten() throws {
        let clock = ManualClock()
        let table = SwarmTable(interval: .seconds(1), now: clock.read)
        let blob = Self.digest(4)
        try table.announce(agent: "quiet", address: "http://10.0.0.2:6789", full: true, blobs: [blob: .full(count: 3)], servedBytes: 10)
        try table.announce(agent: "chatty", address: "http://10.0.0.3:6789", full: true, blobs: [blob: .full(count: 3)], servedBytes: 5)
        clock.advance(2_000)
        try table.announce(agent: "chatty", address: "http://10.0.0.3:6789", full: true, blobs: [blob: .full(count: 3)], servedBytes: 5)
        clock.advance(900)
        #expect(Set(table.peers(of: blob, caller: "x").map(\.agent)) == ["quiet", "chatty"], "2.9 s of silence is under three intervals")
        clock.advance(200)
        #expect(table.peers(of: blob, caller: "x").map(\.agent) == ["chatty"])
        let summary = table.summary()
        #expect(summary.agents == 1)
        #expect(summary.servedBytes == 5, "a forgotten agent's bytes leave the sum")
        clock.advance(3_100)
        #expect(table.summary().agents == 0)
        #expect(table.summary().blobs == 0)
    }

    @Test func theBoundsRefuseANewAgentAndAnAgentHoldingTooMuch() throws {
        var limits = SwarmTable.Limits()
        (limits.agents, limits.holdingsPerAgent) = (2, 3)
        let table = SwarmTable(interval: .seconds(15), limits: limits)
        let three = Dictionary(uniqueKeysWithValues: (1...3).map { (Self.digest($0), ChunkBitfield.full(count: 1)) })
        try table.announce(agent: "a", address: "http://h:1", full: true, blobs: three, servedBytes: 0)
        #expect(throws: SwarmTableError.tooManyHoldings(limit: 3)) {
            try table.announce(agent: "a", address: "http://h:1", full: false, blobs: [Self.digest(4): .full(count: 1)], servedBytes: 0)
        }
        // Dropping one makes room for another in the same announce.
        try table.announce(agent: "a", address: "http://h:1", full: false, blobs: [Self.digest(1): ChunkBitfield(count: 1), Self.digest(4): .full(count: 1)], servedBytes: 0)
        try table.announce(agent: "b", address: "http://h:2", full: true, blobs: [:], servedBytes: 0)
        #expect(throws: SwarmTableError.full("the tracker keeps at most 2 agents")) {
            try table.announce(agent: "c", address: "http://h:3", full: true, blobs: [:], servedBytes: 0)
        }
        try table.announce(agent: "b", address: "http://h:2", full: true, blobs: [:], servedBytes: 0)
    }

    @Test func bitfieldBytesAreBoundedPerAgentAndInAll() throws {
        var limits = SwarmTable.Limits()
        (limits.bitfieldBytesPerAgent, limits.bitfieldBytes) = (1_000, 1_500)
        let table = SwarmTable(interval: .seconds(15), limits: limits)
        // 4,000 chunks: 500 bytes each.
        let big = ChunkBitfield.full(count: 4_000)
        try table.announce(agent: "a", address: "http://h:1", full: true, blobs: [Self.digest(1): big, Self.digest(2): big], servedBytes: 0)
        #expect(throws: SwarmTableError.bitfieldsTooLarge(limit: 1_000)) {
            try table.announce(agent: "a", address: "http://h:1", full: false, blobs: [Self.digest(3): big], servedBytes: 0)
        }
        // Replacing a blob's bitfield costs only the difference.
        try table.announce(agent: "a", address: "http://h:1", full: false, blobs: [Self.digest(2): Self.field(4_000, [1])], servedBytes: 0)
        try table.announce(agent: "b", address: "http://h:2", full: true, blobs: [Self.digest(1): big], servedBytes: 0)
        #expect(throws: SwarmTableError.full("the tracker keeps at most 1500 bytes of bitfields")) {
            try table.announce(agent: "c", address: "http://h:3", full: true, blobs: [Self.digest(1): big], servedBytes: 0)
        }
        // Dropping a blob frees its bytes for everyone.
        try table.announce(agent: "a", address: "http://h:1", full: false, blobs: [Self.digest(2): ChunkBitfield(count: 4_000)], servedBytes: 0)
        try table.announce(agent: "c", address: "http://h:3", full: true, blobs: [Self.digest(1): big], servedBytes: 0)
        #expect(table.summary().agents == 3)
    }

    @Test func aLookupAnswersAtMostTheLimitOfDistinctHoldersWithoutTheCaller() throws {
        let table = SwarmTable(interval: .seconds(15))
        let blob = Self.digest(5)
        for n in 0..<500 {
            try table.announce(agent: "agent-\(n)", address: "http://10.1.\(n / 250).\(n % 250):6789", full: true, blobs: [blob: .full(count: 2)], servedBytes: 0)
        }
        let first = table.peers(of: blob, caller: "agent-0")
        #expect(first.count == Swarm.maxPeersPerLookup)
        #expect(Set(first.map(\.agent)).count == first.count)
        #expect(!first.contains { $0.agent == "agent-0" })
        let second = table.peers(of: blob, caller: "agent-0")
        #expect(first.map(\.agent) != second.map(\.agent), "holders come in random order")
        // A small swarm: everyone but the caller.
        let small = SwarmTable(interval: .seconds(15))
        for n in 0..<3 { try small.announce(agent: "s\(n)", address: "http://h:\(n + 1)", full: true, blobs: [blob: .full(count: 1)], servedBytes: 0) }
        #expect(Set(small.peers(of: blob, caller: "s1").map(\.agent)) == ["s0", "s2"])
    }

    @Test func ratesCountAnnouncesLookupsAndTheGrowthOfServedBytes() throws {
        let clock = ManualClock()
        let table = SwarmTable(interval: .seconds(15), now: clock.read)
        let blob = Self.digest(6)
        for second in 0..<10 {
            try table.announce(agent: "a", address: "http://h:1", full: false, blobs: [blob: .full(count: 1)], servedBytes: UInt64(second) * 1_000)
            _ = table.peers(of: blob, caller: "b")
            _ = table.peers(of: blob, caller: "b")
            clock.advance(1_000)
        }
        let summary = table.summary()
        #expect(abs(summary.announcesPerSecond - 1.0) < 0.01, "\(summary)")
        #expect(abs(summary.lookupsPerSecond - 2.0) < 0.01, "\(summary)")
        #expect(abs(summary.servedBytesPerSecond - 900.0) < 0.01, "9,000 bytes of growth over 10 s: \(summary)")
        #expect(summary.servedBytes == 9_000)
        // A minute later without traffic the rates fall to nothing.
        clock.advance(61_000)
        let idle = table.summary()
        #expect(idle.announcesPerSecond == 0 && idle.lookupsPerSecond == 0 && idle.servedBytesPerSecond == 0)
    }

    @Test func peerAddressesAreSchemeHostAndPortAlone() {
        for good in ["http://10.0.0.1:6789", "https://node-7.example.com:443", "http://[fe80::1]:6789", "http://localhost:1"] {
            #expect(TrackerRoutes.isPeerAddress(good), "\(good)")
        }
        let bad = [
            "10.0.0.1:6789", "ftp://h:1", "http://h", "http://h:0", "http://h:65536", "http://h:1/", "http://h:1/path",
            "http://h:1?x=1", "http://user@h:1", "http://h :1", "http://:1", "http://h:+1", "http://h:01", "http://fe80::1:1",
            "http://h:1#frag", "http://" + String(repeating: "a", count: 200) + ":1",
        ]
        for address in bad { #expect(!TrackerRoutes.isPeerAddress(address), "\(address)") }
    }
}

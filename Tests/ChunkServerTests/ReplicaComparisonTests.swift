import ChunkStorage
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

@testable import ChunkServer

/// ``ReplicaComparison`` against chunkserver routers on loopback ports, over real volume stores:
/// what it reports per member, by which majority rule, and how few requests it takes.
@Suite("Replica comparison")
struct ReplicaComparisonTests {
    /// Runs `test` with `count` chunkservers of group 1 listening on loopback, each over its own store.
    func withMembers(_ count: Int, _ test: @escaping @Sendable ([VolumeChunkStore], [ReplicaComparison.Member]) async throws -> Void) async throws {
        let dirs = try (0..<count).map { _ in try TemporaryDirectory("replica-comparison") }
        defer { for dir in dirs { dir.remove() } }
        let stores = try dirs.map { dir in
            try VolumeChunkStore(
                configuration: VolumeStoreConfiguration(directory: dir.path, volumeSize: 8 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0))
        }
        do {
            try await serve(stores, ports: []) { ports in
                let members = ports.enumerated().map { i, port in
                    ReplicaComparison.Member(id: "cs\(i + 1)", client: ChunkServerClient(baseURL: "127.0.0.1:\(port)", transport: .plain))
                }
                try await test(stores, members)
            }
        } catch {
            for store in stores { await store.close() }
            throw error
        }
        for store in stores { await store.close() }
    }

    /// Serves each store in turn (live, port 0), then runs `body` with every port.
    private func serve(_ stores: [VolumeChunkStore], ports: [Int], _ body: @escaping @Sendable ([Int]) async throws -> Void) async throws {
        guard ports.count < stores.count else { return try await body(ports) }
        let store = stores[ports.count]
        let configuration = ChunkServerConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), masterURL: "http://127.0.0.1:1", group: 1, store: store.configuration,
            security: .insecure)
        let report: @Sendable () -> HeartbeatReport = { .initializing(serverId: "cs", group: 1, addr: "127.0.0.1:1") }
        let router = ChunkServer.router(
            store: store, configuration: configuration, counters: TrafficCounters(), report: report, logger: Logger(label: "test"))
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "test"))
        try await app.test(.live) { client in
            try await serve(stores, ports: ports + [client.port!], body)
        }
    }

    /// Stores chunks `ids` on each of `stores`, all at once (so they share fsyncs); chunk `id`'s
    /// bytes are made from `seed`, else from the id.
    func put(_ ids: [UInt64], seed: UInt64? = nil, on stores: [VolumeChunkStore]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in stores {
                for id in ids {
                    group.addTask { _ = try await store.put(ChunkKey(group: 1, fileId: id), data: ByteBuffer(string: "chunk \(id) \(seed ?? id)"), crc: nil) }
                }
            }
            try await group.waitForAll()
        }
    }

    @Test func identicalMembersCostOneRequestEach() async throws {
        try await withMembers(3) { stores, members in
            try await put(Array(1...3000), on: stores)
            let report = try await ReplicaComparison(group: 1, members: members).run()
            #expect(report.clean)
            #expect(report.requests == 3)
            #expect(report.rounds == 1)
            #expect(report.chunks == 3000)
            #expect(report.members.map(\.chunks) == [3000, 3000, 3000])
        }
    }

    @Test func threeMembersReportMissingExtraAndCRCByMajorityInFewRequests() async throws {
        try await withMembers(3) { stores, members in
            let lacking: Set<UInt64> = [7, 1500, 2999]
            let all = Array(1...3000 as ClosedRange<UInt64>)
            try await put(all.filter { $0 != 2000 }, on: [stores[0]])
            try await put([2000], seed: 1, on: [stores[0]])
            try await put(all, on: [stores[1]])
            try await put(all.filter { !lacking.contains($0) }, on: [stores[2]])
            try await put([5000], on: [stores[1]])
            let report = try await ReplicaComparison(group: 1, members: members).run()
            #expect(report.members.map(\.missing) == [[], [], [7, 1500, 2999]])
            #expect(report.members.map(\.extra) == [[], [5000], []])
            // cs1 holds chunk 2000 with other bytes than cs2 and cs3.
            #expect(report.members.map(\.crcDiffers) == [[2000], [], []])
            #expect(report.unreachable.isEmpty)
            #expect(report.chunks == 3001)
            // Five differences: at most a request per member per level (eight) each, and a
            // listing per member; far from the 3000 chunks.
            #expect(report.requests <= 5 * (3 * 8 + 3), "\(report.requests) requests")
        }
    }

    @Test func ofTwoMembersTheOneLackingAChunkMissesIt() async throws {
        try await withMembers(2) { stores, members in
            try await put(Array(1...400), on: stores)
            try await put([401], on: [stores[0]])
            try await stores[0].delete(ChunkKey(group: 1, fileId: 9))
            let report = try await ReplicaComparison(group: 1, members: members).run()
            #expect(report.members.map(\.missing) == [[9], [401]])
            #expect(report.members.map(\.extra) == [[], []])
        }
    }

    @Test func youngChunksAreLeftOutAndAFailingMemberIsComparedWithout() async throws {
        try await withMembers(3) { stores, members in
            try await put(Array(1...100), on: stores)
            try await put([101], on: [stores[0]])
            let young = try await ReplicaComparison(group: 1, members: members, minAgeMs: 60_000).run()
            #expect(young.clean, "\(young.members)")
            let everything = try await ReplicaComparison(group: 1, members: members).run()
            #expect(everything.members[0].extra == [101])

            let dead = ReplicaComparison.Member(id: "cs9", client: ChunkServerClient(baseURL: "127.0.0.1:1", timeout: .seconds(1), transport: .plain))
            let report = try await ReplicaComparison(group: 1, members: [members[1], dead, members[2]]).run()
            #expect(report.unreachable.keys.sorted() == ["cs9"])
            #expect(report.members.map(\.id) == ["cs2", "cs3"])
            #expect(report.members.allSatisfy { $0.clean })
            #expect(!report.clean)
        }
    }
}

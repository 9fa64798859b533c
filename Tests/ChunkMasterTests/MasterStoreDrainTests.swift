import ChunkMaster
import SpeedyCore
import Testing

/// A group's drain as the master's database keeps it, on SQLite and PostgreSQL.
extension MasterStoreConformanceTests {
    @Test(arguments: Kind.allCases)
    func aDrainIsKeptUntilUndoneOrTheGroupIsRemoved(kind: Kind) async throws {
        try await withStores(kind) { store, other in
            try await store.save([.groupAdded(group: 3), .groupAdded(group: 4), .drainSet(group: 3, sinceMs: 1234)], fence: nil)
            #expect(try await other.drainingGroups() == [3: 1234])
            try await store.save([.drainSet(group: 3, sinceMs: nil), .drainSet(group: 4, sinceMs: 99)], fence: nil)
            #expect(try await other.drainingGroups() == [4: 99])
            // A removed group's drain goes with it: made again, it takes chunks.
            try await store.save([.groupRemoved(group: 4)], fence: nil)
            #expect(try await other.drainingGroups() == [:])
            try await store.save([.groupAdded(group: 4)], fence: nil)
            #expect(try await other.drainingGroups() == [:])
            #expect(try await other.groups() == [3, 4])
        }
    }
}

import Foundation
import SpeedyCore
import Testing

/// What retention needs of every ``MetadataStore``: tags with their push and pull times, pulls
/// that only move forward, and deletes that lose to a push made since the tags were read.
extension MetadataStoreConformanceTests {
    @Test(arguments: Kind.allCases)
    func tagDetailsCarryPushAndPullTimes(kind: Kind) async throws {
        try await withStore(kind) { store in
            let one = manifest("team/app", "one")
            let two = manifest("team/app", "two")
            let before = currentTimeMillis()
            for tag in ["v1", "v2", "latest"] { try await store.putManifest(one, tag: tag) }
            try await store.putManifest(two, tag: "v3")
            var details: [TagDetail] = []
            var last: String?
            repeat {
                let page = try await store.tagDetails(in: "team/app", after: last, limit: 3)
                details += page.tags
                last = page.tags.last?.tag
                if !page.more { break }
            } while true
            #expect(details.map(\.tag) == ["latest", "v1", "v2", "v3"])
            #expect(details.map(\.digest) == [one.digest, one.digest, one.digest, two.digest])
            #expect(details.allSatisfy { $0.pushedMs >= before && $0.pulledMs == 0 })
            #expect(try await store.tagDetails(in: "missing", after: nil, limit: 10) == TagDetailPage(tags: [], more: false))

            // A pull time only moves forward; pulls of tags that are gone are passed over.
            try await store.recordPulls([
                TagPull(repository: "team/app", tag: "v1", pulledMs: 5000), TagPull(repository: "team/app", tag: "gone", pulledMs: 9000),
                TagPull(repository: "team/app", tag: "v2", pulledMs: 7000),
            ])
            try await store.recordPulls([TagPull(repository: "team/app", tag: "v1", pulledMs: 4000)])
            let pulled = try await store.tagDetails(in: "team/app", after: nil, limit: 10).tags
            #expect(pulled.map(\.pulledMs) == [0, 5000, 7000, 0])
            #expect(try await store.tagDetails(in: "team/app", after: "v1", limit: 10).tags.map(\.tag) == ["v2", "v3"])
        }
    }

    @Test(arguments: Kind.allCases)
    func aRetentionDeleteLosesToAPushSinceItLooked(kind: Kind) async throws {
        try await withStore(kind) { store in
            let one = manifest("r", "one")
            let two = manifest("r", "two")
            try await store.putManifest(one, tag: "moved")
            try await store.putManifest(one, tag: "stale")
            let seen = try await store.tagDetails(in: "r", after: nil, limit: 10).tags
            let moved = try #require(seen.first { $0.tag == "moved" })
            let stale = try #require(seen.first { $0.tag == "stale" })
            // Pushed again (to another manifest) after retention read it: it stays.
            try await store.putManifest(two, tag: "moved")
            #expect(try await store.deleteTag(moved, in: "r") == false)
            #expect(try await store.manifest("moved", in: "r")?.digest == two.digest)
            // Unchanged: it goes, once; the manifest stays by digest.
            #expect(try await store.deleteTag(stale, in: "r"))
            #expect(try await store.deleteTag(stale, in: "r") == false)
            #expect(try await store.manifest("stale", in: "r") == nil)
            #expect(try await store.manifest(one.digest.description, in: "r") == one)
        }
    }
}

@testable import ImageServer
import SpeedyCore
import Testing

/// The catalog filters before it pages (issue 20: its `Link` named hidden repositories), across
/// as many store reads as the hidden names take.
@Suite("Catalog paging")
struct CatalogPagingTests {
    /// A sorted store of `names`, read `limit` at a time after a cursor, as the metaserver does.
    static func store(_ names: [String]) -> (String?, Int) async throws -> NamePage {
        let sorted = names.sorted()
        return { last, limit in
            let after = sorted.filter { $0 > (last ?? "") }
            return NamePage(names: Array(after.prefix(limit)), more: after.count > limit)
        }
    }

    @Test func everyVisibleNameOnceAndNoHiddenOneAcrossManyReads() async throws {
        // Runs of hidden names longer than a read, at the start, between and at the end.
        let hidden = (0..<40).map { "h\($0 < 10 ? "0" : "")\($0)" } + ["a-hidden", "zz-1", "zz-2", "zz-3"]
        let visible = ["a", "b", "i", "j", "k", "z"]
        let read = Self.store(hidden + visible)
        for n in [1, 2, 3, 6, 7] {
            for batch in [1, 2, 5, 100] {
                var seen: [String] = []
                var last: String?
                var pages = 0
                while pages < 20 {
                    pages += 1
                    let page = try await RegistryAPI.visibleNames(after: last, count: n, batch: batch, visible: { visible.contains($0) }, read: read)
                    #expect(!page.names.isEmpty && page.names.count <= n, "n=\(n) batch=\(batch) after \(last ?? "-"): \(page)")
                    seen += page.names
                    guard page.more else { break }
                    last = page.names.last
                }
                #expect(seen == visible, "n=\(n) batch=\(batch)")
            }
        }
    }

    @Test func nothingVisibleIsOneEmptyPageWithoutANext() async throws {
        let page = try await RegistryAPI.visibleNames(after: nil, count: 1, batch: 3, visible: { _ in false }, read: Self.store(["a", "b", "c", "d"]))
        #expect(page.names.isEmpty && !page.more)
        let empty = try await RegistryAPI.visibleNames(after: nil, count: 5, batch: 3, visible: { _ in true }, read: Self.store([]))
        #expect(empty.names.isEmpty && !empty.more)
    }
}

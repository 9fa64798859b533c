import Foundation
import MetaServer
import Testing
import SpeedyTestSupport

/// What only the SQLite store has: one file that several metaservers on one host may open.
@Suite("SQLite metadata store")
struct SQLiteMetadataStoreTests {
    @Test func metaserversOpeningOneNewDatabaseAtOnceAllStart() async throws {
        let temporary = try TemporaryDirectory("meta")
        defer { temporary.remove() }
        let dir = temporary.path
        // Eight opens at once, on threads of their own, of a database none has migrated yet.
        let failures = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    await withCheckedContinuation { continuation in
                        Thread.detachNewThread {
                            do {
                                _ = try SQLiteMetadataStore(path: dir + "/meta.sqlite")
                                continuation.resume(returning: nil)
                            } catch {
                                continuation.resume(returning: "\(error)")
                            }
                        }
                    }
                }
            }
            return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
        }
        #expect(failures.isEmpty, "\(failures)")
    }
}

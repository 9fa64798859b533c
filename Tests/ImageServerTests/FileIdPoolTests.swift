import ChunkMaster
import Foundation
@testable import ImageServer
import Logging
import ServerSupport
import SpeedyClients
import SpeedyCore
import Testing
import SpeedyTestSupport

@Suite("File id pool")
struct FileIdPoolTests {
    /// Many chunk writes asking at once, across several lease refills, all get distinct ids.
    @Test(.timeLimit(.minutes(1)))
    func concurrentCallersShareLeasesAndNeverRepeatAnId() async throws {
        let temporary = try TemporaryDirectory("pool")
        defer { temporary.remove() }
        let dir = temporary.path
        let master = try await ChunkMaster(
            configuration: .init(listen: HostPort(host: "127.0.0.1", port: 0), dataDirectory: dir, security: .insecure), logger: Logger(label: "test"))
        let (ports, feed) = AsyncStream<HostPort>.makeStream()
        let server = Task {
            try await HTTPServer.run(role: "chunkmaster", router: master.router(), listen: HostPort(host: "127.0.0.1", port: 0), logger: Logger(label: "test")) {
                feed.yield($0)
            }
        }
        var iterator = ports.makeAsyncIterator()
        let bound = await iterator.next()!
        let pool = FileIdPool(master: MasterClient(baseURL: bound.url(scheme: "http"), transport: .plain), leaseSize: 7)
        let ids = try await withThrowingTaskGroup(of: UInt64.self) { group in
            for _ in 0..<200 { group.addTask { try await pool.next() } }
            return try await group.reduce(into: [UInt64]()) { $0.append($1) }
        }
        #expect(ids.count == 200)
        #expect(Set(ids).count == 200)
        server.cancel()
        _ = await server.result
    }
}

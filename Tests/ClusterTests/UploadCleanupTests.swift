import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing
import SpeedyTestSupport

extension ProcessSuites {
    /// What an upload that fails, is cancelled or loses a race leaves on the chunkservers: nothing
    /// but the chunks of the blobs that were stored (the imageserver's `BlobWriter` owns that).
    @Suite("Upload cleanup", .serialized)
    struct UploadCleanupTests {
        func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
            TestBytes.random(count, seed: Int(seed))
        }

        /// Chunks on each chunkserver of group 1.
        func chunkCounts(_ registry: ClusterHarness.Registry) async -> [Int] {
            var counts: [Int] = []
            for server in registry.chunkservers {
                let listing = try? await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).listAll(group: 1)
                counts.append(listing?.count ?? -1)
            }
            return counts
        }

        @Test func failedCancelledAndLosingUploadsLeaveNoChunks() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport)
            // Three 4 MiB chunks per body, so every failure below has chunks written to drop.
            let data = bytes(9_000_000, seed: 3)
            let digest = Digest.of(data)
            let wrong = Digest.of([1, 2, 3])
            func newSession() async throws -> String {
                try #require(try await client.send(.POST, "/v2/clean/app/blobs/uploads/").headers.first(name: "Location"))
            }

            // A whole blob in one POST whose digest is not the one claimed.
            let mismatched = try await client.send(.POST, "/v2/clean/app/blobs/uploads/?digest=\(wrong)", body: ByteBuffer(bytes: data))
            #expect(mismatched.status == 400 && errorCode(mismatched.body) == "DIGEST_INVALID")

            // A PATCH whose Content-Range promised more than its body: refused, the session stays.
            let short = try await newSession()
            let promised = try await client.send(
                .PATCH, short, body: ByteBuffer(bytes: data), headers: [("Content-Range", "0-\(data.count + 99)")])
            #expect(promised.status == 400 && errorCode(promised.body) == "SIZE_INVALID")
            #expect(try await client.send(.GET, short).headers.first(name: "Range") == "0-0")

            // PATCHed, then finished with the wrong digest: the upload goes as a whole.
            let finished = try await newSession()
            #expect(try await client.send(.PATCH, finished, body: ByteBuffer(bytes: data)).status == 202)
            let badFinish = try await client.send(.PUT, finished + "?digest=\(wrong)")
            #expect(badFinish.status == 400 && errorCode(badFinish.body) == "DIGEST_INVALID")
            #expect(try await client.send(.GET, finished).status == 404)

            // PATCHed, then cancelled.
            let cancelled = try await newSession()
            #expect(try await client.send(.PATCH, cancelled, body: ByteBuffer(bytes: data)).status == 202)
            #expect(try await client.send(.DELETE, cancelled).status == 204)
            #expect(try await client.send(.GET, cancelled).status == 404)
            #expect(try await client.send(.DELETE, cancelled).status == 404)

            let empty = await cluster.eventually(within: 15) { await chunkCounts(registry).allSatisfy { $0 == 0 } }
            let left = await chunkCounts(registry)
            #expect(empty, "chunks left behind: \(left)")

            // The same blob pushed four times at once: one record stands, the others' chunks go.
            let pushes = try await withThrowingTaskGroup(of: Int.self) { group in
                for i in 0..<4 {
                    group.addTask {
                        try await client.send(.POST, "/v2/clean/app\(i)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data)).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(pushes == [201, 201, 201, 201])
            let one = await cluster.eventually(within: 15) { await chunkCounts(registry).allSatisfy { $0 == 3 } }
            let kept = await chunkCounts(registry)
            #expect(one, "expected one blob's 3 chunks on each member: \(kept)")
            for i in 0..<4 {
                let pulled = try await client.send(.GET, "/v2/clean/app\(i)/blobs/\(digest)", limit: 32 << 20)
                #expect(pulled.status == 200 && Array(pulled.body.readableBytesView) == data)
            }
        }
    }
}

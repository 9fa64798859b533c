import ChunkStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServerSupport
import SpeedyCore
import SpeedyTestSupport
import Testing

@testable import ChunkServer

/// The chunkserver's API in process (no port): the router `ChunkServer.run` serves, over a real
/// volume store, answering bad input with the documented status and code and storing nothing.
@Suite("Chunkserver routes in process")
struct ChunkRoutesTests {
    static let secret = ClusterSecret("chunk-routes-test-secret-0123456789")!

    /// Runs `test` against the chunkserver router of group 1 over a fresh store (1 MiB chunks at most).
    func withChunkserver(
        security: RoleSecurity = .insecure, logger: Logger = Logger(label: "test"), _ test: @escaping @Sendable (any TestClientProtocol, VolumeChunkStore) async throws -> Void
    ) async throws {
        let dir = try TemporaryDirectory("chunk-routes")
        defer { dir.remove() }
        let store = try VolumeChunkStore(
            configuration: VolumeStoreConfiguration(directory: dir.path, volumeSize: 8 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0))
        let configuration = ChunkServerConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), masterURL: "http://127.0.0.1:1", group: 1,
            store: store.configuration, security: security)
        let report: @Sendable () -> HeartbeatReport = { .initializing(serverId: "cs-test", group: 1, addr: "127.0.0.1:1") }
        let router = ChunkServer.router(
            store: store, configuration: configuration, counters: TrafficCounters(), report: report, logger: logger)
        do {
            try await Application(router: router).test(.router) { client in try await test(client, store) }
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    @Test func badPathsAndHeadersGetTheirCodeAndStoreNothing() async throws {
        try await withChunkserver { client, store in
            let crc = HTTPField.Name(SpeedyHeader.crc32c)!
            let chain = HTTPField.Name(SpeedyHeader.chain)!
            let hello = ByteBuffer(string: "hello")
            let cases: [(String, HTTPRequest.Method, HTTPFields, Int, InternalErrorCode)] = [
                ("/v1/chunks/1/7", .put, [crc: "00000001"], 400, .checksumMismatch),
                ("/v1/chunks/1/7", .put, [crc: "not-hex"], 400, .badRequest),
                ("/v1/chunks/9/7", .put, [:], 404, .groupUnknown),
                ("/v1/chunks/x/7", .put, [:], 400, .badRequest),
                ("/v1/chunks/1/seven", .put, [:], 400, .badRequest),
                ("/v1/chunks/1/18446744073709551616", .put, [:], 400, .badRequest),
                // A chain needs the CRC for the members after this one to check: refused before any forward.
                ("/v1/chunks/1/7", .put, [chain: "127.0.0.1:1"], 400, .badRequest),
                ("/v1/chunks/1/7", .put, [chain: "not an address"], 400, .badRequest),
            ]
            for (uri, method, headers, status, code) in cases {
                let response = try await client.execute(uri: uri, method: method, headers: headers, body: hello)
                #expect(response.status.code == status, "\(method) \(uri) \(headers)")
                #expect(errorCode(response) == code.rawValue, "\(method) \(uri) \(headers)")
            }
            #expect(store.usage().chunkCount == 0)
        }
    }

    @Test func aChunkOverTheLimitIsRefusedBeforeItIsRead() async throws {
        try await withChunkserver { client, store in
            // Declared too large: refused on the header (the test client sets Content-Length only with a body).
            let declared = try await client.execute(uri: "/v1/chunks/1/8", method: .put, headers: [.contentLength: String((1 << 20) + 1)])
            #expect(declared.status == .contentTooLarge)
            #expect(errorCode(declared) == InternalErrorCode.chunkTooLarge.rawValue)
            let sent = try await client.execute(uri: "/v1/chunks/1/8", method: .put, body: ByteBuffer(repeating: 1, count: (1 << 20) + 1))
            #expect(sent.status == .contentTooLarge)
            #expect(errorCode(sent) == InternalErrorCode.chunkTooLarge.rawValue)
            #expect(store.info(ChunkKey(group: 1, fileId: 8)) == nil)
        }
    }

    @Test func readsDeletesAndListingsAnswerTheirCodes() async throws {
        try await withChunkserver { client, store in
            let bytes = ByteBuffer(bytes: (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let stored = try await client.execute(uri: "/v1/chunks/1/5", method: .put, body: bytes)
            #expect(stored.status == .created)
            #expect(stored.headers[HTTPField.Name(SpeedyHeader.crc32c)!] == CRCFormat.hex(CRC32C.checksum(bytes)))
            // The same key with other bytes is a conflict, and the first copy stays.
            let other = try await client.execute(uri: "/v1/chunks/1/5", method: .put, body: ByteBuffer(string: "other"))
            #expect(other.status == .conflict)
            #expect(errorCode(other) == InternalErrorCode.chunkExists.rawValue)

            let range = try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: [.range: "bytes=100-199"])
            #expect(range.status == .partialContent)
            #expect(range.body == bytes.getSlice(at: 100, length: 100))
            let beyond = try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: [.range: "bytes=5000-"])
            #expect(beyond.status == .rangeNotSatisfiable)
            #expect(beyond.headers[.contentRange] == "bytes */1000")

            let missing = try await client.execute(uri: "/v1/chunks/1/6", method: .get)
            #expect(missing.status == .notFound)
            #expect(errorCode(missing) == InternalErrorCode.chunkUnknown.rawValue)
            #expect(try await client.execute(uri: "/v1/chunks/1/6", method: .head).status == .notFound)

            // A cleanup delete that names other bytes' CRC deletes nothing.
            let badCRC = try await client.execute(uri: "/v1/chunks/1/5?crc=zz", method: .delete)
            #expect(badCRC.status == .badRequest)
            #expect(errorCode(badCRC) == InternalErrorCode.badRequest.rawValue)
            let differs = try await client.execute(uri: "/v1/chunks/1/5?crc=00000001", method: .delete)
            #expect(differs.status.code == 412)
            #expect(errorCode(differs) == InternalErrorCode.crcDiffers.rawValue)
            #expect(store.info(ChunkKey(group: 1, fileId: 5)) != nil)

            for (uri, status, code) in [
                ("/v1/chunks/1?limit=0", 400, InternalErrorCode.badRequest), ("/v1/chunks/1?after=x", 400, .badRequest),
                ("/v1/chunks/2", 404, .groupUnknown), ("/v1/chunks/one", 400, .badRequest),
            ] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status.code == status, "\(uri)")
                #expect(errorCode(response) == code.rawValue, "\(uri)")
            }
            let deleted = try await client.execute(uri: "/v1/chunks/1/5?crc=\(CRCFormat.hex(CRC32C.checksum(bytes)))", method: .delete)
            #expect(deleted.status == .noContent)
            let again = try await client.execute(uri: "/v1/chunks/1/5", method: .delete)
            #expect(again.status == .notFound)
            #expect(errorCode(again) == InternalErrorCode.chunkUnknown.rawValue)
        }
    }

    @Test func digestsSumEachRangesChunksAndRefuseBadRanges() async throws {
        try await withChunkserver { client, store in
            var crcs: [UInt64: UInt32] = [:]
            for id in [1, 7, 8, 250, 251, 600, 999] as [UInt64] {
                crcs[id] = try await store.put(ChunkKey(group: 1, fileId: id), data: ByteBuffer(string: "chunk \(id)"), crc: nil).crc
            }
            let answer = try await client.execute(uri: "/v1/chunks/1/digests?from=1&to=1000&parts=4", method: .get)
            #expect(answer.status == .ok)
            let digests = try WireJSON.decoder().decode(ChunkRangeDigests.self, from: Data(answer.body.readableBytesView))
            #expect(digests.group == 1)
            #expect(digests.ranges.map { [$0.from, $0.to] } == [[1, 251], [251, 501], [501, 751], [751, 1000]])
            for range in digests.ranges {
                let held = crcs.filter { $0.key >= range.from && $0.key < range.to }
                #expect(range.count == UInt64(held.count), "\(range)")
                #expect(range.hash == held.reduce(0) { $0 &+ ChunkRangeDigest.chunkHash(fileId: $1.key, crc: $1.value) }, "\(range)")
            }
            #expect(digests.ranges.map(\.count) == [4, 1, 1, 1])
            // The defaults: the whole id space in 16 parts.
            let whole = try await client.execute(uri: "/v1/chunks/1/digests", method: .get)
            let all = try WireJSON.decoder().decode(ChunkRangeDigests.self, from: Data(whole.body.readableBytesView))
            #expect(all.ranges.count == 16)
            #expect(all.ranges.first?.from == 0 && all.ranges.last?.to == .max)
            #expect(all.ranges.reduce(0) { $0 + $1.count } == 7)

            for (uri, status, code) in [
                ("/v1/chunks/1/digests?from=5&to=5", 400, InternalErrorCode.badRequest), ("/v1/chunks/1/digests?from=9&to=3", 400, .badRequest),
                ("/v1/chunks/1/digests?parts=0", 400, .badRequest), ("/v1/chunks/1/digests?parts=257", 400, .badRequest),
                ("/v1/chunks/1/digests?parts=x", 400, .badRequest), ("/v1/chunks/1/digests?from=-1", 400, .badRequest),
                ("/v1/chunks/1/digests?to=18446744073709551616", 400, .badRequest), ("/v1/chunks/2/digests", 404, .groupUnknown),
                ("/v1/chunks/one/digests", 400, .badRequest),
            ] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status.code == status, "\(uri)")
                #expect(errorCode(response) == code.rawValue, "\(uri)")
            }
            // `digests` is no chunk to store.
            let put = try await client.execute(uri: "/v1/chunks/1/digests", method: .put, body: ByteBuffer(string: "x"))
            #expect(put.status.code >= 400)
            #expect(store.usage().chunkCount == 7)
        }
    }

    @Test func theClusterSecretGuardsEveryRouteButTheProbes() async throws {
        try await withChunkserver(security: RoleSecurity(secret: Self.secret)) { client, store in
            for (uri, method) in [("/v1/chunks/1/5", HTTPRequest.Method.put), ("/v1/chunks/1", .get), ("/v1/chunks/1/digests", .get), ("//v1//chunks/1", .get), ("/v1/stats", .get)] {
                let response = try await client.execute(uri: uri, method: method, body: ByteBuffer(string: "x"))
                #expect(response.status == .unauthorized, "\(method) \(uri)")
                #expect(errorCode(response) == InternalErrorCode.unauthorized.rawValue, "\(method) \(uri)")
                #expect(response.headers[.wwwAuthenticate] != nil)
            }
            let wrong = try await client.execute(uri: "/v1/chunks/1/5", method: .put, headers: [.authorization: "Bearer not-the-secret-at-all"], body: ByteBuffer(string: "x"))
            #expect(wrong.status == .unauthorized)
            #expect(store.usage().chunkCount == 0)
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/v1/health", method: .get).status == .ok)
            let allowed = try await client.execute(
                uri: "/v1/chunks/1/5", method: .put, headers: [.authorization: Self.secret.authorization], body: ByteBuffer(string: "x"))
            #expect(allowed.status == .created)
        }
    }
}

/// The `code` of an internal API's JSON error body, nil when the body is not one.
func errorCode(_ response: TestResponse) -> String? {
    try? WireJSON.decoder().decode(ErrorBody.self, from: Data(response.body.readableBytesView)).code
}

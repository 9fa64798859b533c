import ChunkStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Synchronization
import Testing

@testable import ChunkServer

/// A chunkserver in process with chunk tickets (issue 23): a ticket reads its own chunk with `GET`
/// or `HEAD`, and nothing else; forged, malformed and expired tickets get 401, a good ticket used
/// for anything else 403, and no refusal logs the ticket.
@Suite("Chunkserver chunk tickets in process")
struct ChunkTicketRoutesTests {
    static let secret = ChunkRoutesTests.secret
    static let key = ChunkTicketKey(secret: secret)
    static let chunk = ChunkKey(group: 1, fileId: 5)
    static let hello = ByteBuffer(string: "hello, chunk five")

    /// Runs `test` on a chunkserver of group 1 behind the secret holding chunks 1/5 and 1/6, with
    /// the log lines it writes.
    func withStoredChunks(_ test: @escaping @Sendable (any TestClientProtocol, VolumeChunkStore, CapturedLog) async throws -> Void) async throws {
        let log = CapturedLog()
        let logger = Logger(label: "ticket-test") { _ in CapturingLogHandler(log: log) }
        try await ChunkRoutesTests().withChunkserver(security: RoleSecurity(secret: Self.secret), logger: logger) { client, store in
            for (fileId, body) in [(UInt64(5), Self.hello), (6, ByteBuffer(string: "chunk six"))] {
                let put = try await client.execute(
                    uri: "/v1/chunks/1/\(fileId)", method: .put, headers: [.authorization: Self.secret.authorization], body: body)
                #expect(put.status == .created)
            }
            try await test(client, store, log)
        }
    }

    func ticketHeader(_ ticket: String) -> HTTPFields { [.authorization: ChunkMap.authorization(ticket: ticket)] }

    @Test func aTicketReadsItsChunkWithGetAndHead() async throws {
        try await withStoredChunks { client, _, _ in
            let ticket = Self.key.ticket(for: Self.chunk, expiresMs: currentTimeMillis() + 600_000)
            let get = try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: ticketHeader(ticket))
            #expect(get.status == .ok)
            #expect(get.body == Self.hello)
            #expect(get.headers[HTTPField.Name(SpeedyHeader.crc32c)!] == CRCFormat.hex(CRC32C.checksum(Self.hello)))
            let head = try await client.execute(uri: "/v1/chunks/1/5", method: .head, headers: ticketHeader(ticket))
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == String(Self.hello.readableBytes))
            // The path as the router routes it, and a range of the chunk, are the same chunk.
            #expect(try await client.execute(uri: "//v1/chunks/1/5/", method: .get, headers: ticketHeader(ticket)).status == .ok)
            var range = ticketHeader(ticket)
            range[.range] = "bytes=0-4"
            let part = try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: range)
            #expect(part.status == .partialContent && part.body == ByteBuffer(string: "hello"))
        }
    }

    @Test func theTicketDoesNothingElse() async throws {
        try await withStoredChunks { client, store, log in
            let ticket = Self.key.ticket(for: Self.chunk, expiresMs: currentTimeMillis() + 600_000)
            let cases: [(String, HTTPRequest.Method)] = [
                ("/v1/chunks/1/5", .put), ("/v1/chunks/1/5", .delete), ("/v1/chunks/1/5", .post), ("/v1/chunks/1/5?crc=0", .delete),
                ("/v1/chunks/1", .get), ("/v1/chunks/1?after=0", .get), ("/v1/chunks/1/digests", .get), ("/v1/chunks/1/6", .get),
                ("/v1/chunks/1/6", .head), ("/v1/chunks/2/5", .get), ("/v1/stats", .get), ("/metrics", .get), ("/v1/volumes", .get),
                ("/v1/compact", .post), ("/v1/chunks/1/5/x", .get), ("/v1/chunks/1/%35", .get), ("/x/chunks/1/5", .get),
            ]
            for (uri, method) in cases {
                let response = try await client.execute(uri: uri, method: method, headers: ticketHeader(ticket), body: ByteBuffer(string: "x"))
                #expect(response.status == .forbidden, "\(method) \(uri)")
                #expect(errorCode(response) == InternalErrorCode.forbidden.rawValue, "\(method) \(uri)")
            }
            #expect(store.usage().chunkCount == 2)
            #expect(store.info(Self.chunk)?.length == UInt32(Self.hello.readableBytes))
            let lines = log.lines
            #expect(lines.count(where: { $0.contains("refused") }) == cases.count)
            #expect(!lines.contains { $0.contains(ticket) || $0.contains(String(ticket.split(separator: ".").last!)) })
        }
    }

    @Test func forgedMalformedExpiredAndMissingTicketsAre401() async throws {
        try await withStoredChunks { client, _, log in
            let now = currentTimeMillis()
            let expired = Self.key.ticket(for: Self.chunk, expiresMs: now - 1)
            let forged = ChunkTicketKey(secret: ClusterSecret("another-cluster-secret-0123456789")!).ticket(for: Self.chunk, expiresMs: now + 600_000)
            let good = Self.key.ticket(for: Self.chunk, expiresMs: now + 600_000)
            let cases: [(HTTPFields, String)] = [
                (ticketHeader(expired), "ticket expired"),
                (ticketHeader(forged), "ticket signature does not check"),
                (ticketHeader("v1.1.5.\(now + 600_000).AAAA"), "ticket malformed"),
                (ticketHeader(""), "ticket malformed"),
                (ticketHeader(good + good), "ticket malformed"),
                ([.authorization: "Bearer " + good], "cluster secret"),
                ([.authorization: "speedyticket " + good], "cluster secret"),
                ([:], "cluster secret"),
            ]
            for (headers, message) in cases {
                for method in [HTTPRequest.Method.get, .head, .put] {
                    let response = try await client.execute(uri: "/v1/chunks/1/5", method: method, headers: headers)
                    #expect(response.status == .unauthorized, "\(method) \(headers)")
                    #expect(response.headers[.wwwAuthenticate] != nil)
                    guard method == .get else { continue }
                    #expect(errorCode(response) == InternalErrorCode.unauthorized.rawValue)
                    #expect(String(buffer: response.body).contains(message), "\(headers): \(String(buffer: response.body))")
                }
            }
            #expect(!log.lines.contains { $0.contains(expired) || $0.contains(forged) || $0.contains(good) })
        }
    }
}

extension ChunkTicketRoutesTests {
    /// Serves a chunkserver of group 1 with `security` on a loopback port holding chunk 1/5, and
    /// runs `test` with its base URL.
    func withLiveChunkserver(security: RoleSecurity, _ test: @escaping @Sendable (String) async throws -> Void) async throws {
        let dir = try TemporaryDirectory("chunk-tickets-live")
        defer { dir.remove() }
        let store = try VolumeChunkStore(
            configuration: VolumeStoreConfiguration(directory: dir.path, volumeSize: 8 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0))
        _ = try await store.put(Self.chunk, data: Self.hello, crc: nil)
        let configuration = ChunkServerConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), masterURL: "http://127.0.0.1:1", group: 1, store: store.configuration, security: security)
        let report: @Sendable () -> HeartbeatReport = { .initializing(serverId: "cs", group: 1, addr: "127.0.0.1:1") }
        let router = ChunkServer.router(
            store: store, configuration: configuration, counters: TrafficCounters(), report: report, logger: Logger(label: "test"))
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "test"))
        do {
            try await app.test(.live) { client in try await test("http://127.0.0.1:\(client.port!)") }
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    /// `ChunkServerClient.getChecked(_:ticket:)` sends the ticket and never the transport's
    /// secret: a bad ticket is refused even from a transport that holds the right secret.
    @Test func theClientSendsTheTicketAndNotTheSecret() async throws {
        try await withLiveChunkserver(security: RoleSecurity(secret: Self.secret)) { url in
            let ticket = Self.key.ticket(for: Self.chunk, expiresMs: currentTimeMillis() + 600_000)
            let anonymous = ChunkServerClient(baseURL: url, transport: .plain)
            let (data, crc) = try await anonymous.getChecked(Self.chunk, ticket: ticket)
            #expect(data == Self.hello && crc == CRC32C.checksum(Self.hello))
            #expect(try await anonymous.get(Self.chunk, ticket: ticket) == Self.hello)
            let withSecret = ChunkServerClient(baseURL: url, transport: ClusterTransport(secret: Self.secret))
            #expect(try await withSecret.get(Self.chunk) == Self.hello)
            let forged = ChunkTicketKey(secret: ClusterSecret("another-cluster-secret-0123456789")!).ticket(for: Self.chunk, expiresMs: currentTimeMillis() + 600_000)
            for (client, ticket) in [(withSecret, forged), (withSecret, ""), (anonymous, "")] {
                do {
                    _ = try await client.getChecked(Self.chunk, ticket: ticket)
                    Issue.record("read with ticket '\(ticket.prefix(8))…'")
                } catch let error as ServiceError {
                    #expect(error.httpStatus == 401)
                }
            }
        }
    }

    /// Under `--insecure` the chunkservers ask for nothing, and the empty tickets of the maps read.
    @Test func anInsecureChunkserverTakesAnEmptyTicket() async throws {
        try await withLiveChunkserver(security: .insecure) { url in
            let data = try await ChunkServerClient(baseURL: url, transport: .plain).get(Self.chunk, ticket: "")
            #expect(data == Self.hello)
        }
    }
}

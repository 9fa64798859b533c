import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import SpeedyClients
import SpeedyCore
import Synchronization
import Testing

/// Whole-chunk reads below the async layers (``ChunkReadClient``), against a member that answers
/// from a script: good chunks on one reused connection, and every way a member (or the wire)
/// can get an answer wrong, each failing the read with the error the imageserver fails over on.
@Suite("Chunk read client")
struct ChunkReadClientTests {
    static let key = ChunkKey(group: 1, fileId: 7)

    @Test func wholeChunksArriveCheckedOnOneReusedConnection() async throws {
        let chunk = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let member = try await ScriptedMember { _, _ in .send(Self.answer(chunk)) }
        defer { member.stop() }
        let reader = member.reader()
        for _ in 0..<3 {
            let (data, crc) = try await member.client.getUnchecked(Self.key, through: reader)
            #expect(Array(buffer: data) == chunk)
            #expect(crc == CRC32C.checksum(chunk))
        }
        #expect(member.connections == 1, "one connection carried all three reads")
        let request = try #require(member.requests.first)
        #expect(request.contains("GET /v1/chunks/1/7 HTTP/1.1"))
        #expect(request.lowercased().contains("x-speedy-read: unchecked"))
        #expect(request.contains("Authorization: Bearer "), "the transport's credential goes with the read")
    }

    @Test func bytesThatDoNotMatchTheirCRCFailTheRead() async throws {
        let chunk = [UInt8](repeating: 9, count: 100_000)
        let member = try await ScriptedMember { _, _ in .send(Self.answer(chunk, crc: CRC32C.checksum(chunk) ^ 1)) }
        defer { member.stop() }
        await #expect(throws: ServiceError.self) {
            do { _ = try await member.client.getUnchecked(Self.key, through: member.reader()) } catch {
                #expect("\(error)".contains(ChunkServerClient.crcMismatch), "\(error)")
                throw error
            }
        }
    }

    @Test func anErrorAnswerKeepsItsStatusAndCode() async throws {
        let body = #"{"code":"CHUNK_NOT_FOUND","message":"chunk 1/7 not found"}"#
        let member = try await ScriptedMember { _, _ in
            .send(Array("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
        }
        defer { member.stop() }
        do {
            _ = try await member.client.getUnchecked(Self.key, through: member.reader())
            Issue.record("a 404 passed")
        } catch {
            #expect(error.httpStatus == 404)
            #expect("\(error)".contains("CHUNK_NOT_FOUND"), "\(error)")
        }
    }

    @Test(arguments: BrokenAnswer.allCases)
    func aBrokenAnswerFailsTheReadAndTheConnectionIsNotReused(_ broken: BrokenAnswer) async throws {
        let chunk = [UInt8](repeating: 3, count: 200_000)
        let member = try await ScriptedMember { index, _ in index == 0 ? broken.reply(chunk) : .send(Self.answer(chunk)) }
        defer { member.stop() }
        var options = ChunkReadClient.Options(silenceLimit: .milliseconds(300))
        options.errorBodyLimit = 1024
        let reader = member.reader(options)
        let started = ContinuousClock.now
        do {
            _ = try await member.client.getUnchecked(Self.key, through: reader)
            Issue.record("\(broken) passed")
        } catch {
            #expect("\(error)".contains(broken.reason), "\(error)")
        }
        // Far above the 300 ms limit (other suites run beside this one): the read ends, it does not hang.
        #expect(ContinuousClock.now - started < .seconds(30), "no broken answer holds the read")
        // The next read gets a good answer on a fresh connection.
        let (data, _) = try await member.client.getUnchecked(Self.key, through: member.reader())
        #expect(data.readableBytes == chunk.count)
        #expect(member.connections == 2)
    }

    @Test func aPooledConnectionTheMemberClosedIsReplacedOnce() async throws {
        let chunk = [UInt8](repeating: 5, count: 4096)
        // Each connection answers one read, then the member closes it while it sits in the pool.
        let member = try await ScriptedMember { _, _ in .sendThenClose(Self.answer(chunk)) }
        defer { member.stop() }
        let reader = member.reader()
        for _ in 0..<3 {
            let (data, _) = try await member.client.getUnchecked(Self.key, through: reader)
            #expect(data.readableBytes == chunk.count)
        }
        #expect(member.connections == 3)
    }

    @Test func aMemberThatRefusesConnectionsIsUnreachable() async throws {
        let member = try await ScriptedMember { _, _ in .silent }
        let client = member.client
        member.stop()
        do {
            _ = try await client.getUnchecked(Self.key, through: ChunkReadClient())
            Issue.record("a closed port answered")
        } catch {
            guard case .unreachable = error else { throw error }
        }
    }

    /// The ways the scripted member gets its first answer wrong.
    enum BrokenAnswer: String, CaseIterable, Sendable, CustomStringConvertible {
        case silent, cutShort, overTheLimit, longErrorBody, malformed, stalledMidway

        var description: String { rawValue }

        func reply(_ chunk: [UInt8]) -> ScriptedMember.Reply {
            switch self {
            case .silent: .silent
            case .cutShort: .sendThenClose(Array(ChunkReadClientTests.answer(chunk).dropLast(1000)))
            case .overTheLimit: .send(Array("HTTP/1.1 200 OK\r\nContent-Length: \(65 << 20)\r\n\r\n".utf8))
            case .longErrorBody: .send(Array("HTTP/1.1 500 Oops\r\nContent-Length: 5000\r\n\r\n".utf8) + [UInt8](repeating: 65, count: 5000))
            case .malformed: .send(Array("HTTP/1.1 2OO OK\r\nContent-Length: 1\r\n\r\nx".utf8))
            case .stalledMidway: .send(Array(ChunkReadClientTests.answer(chunk).prefix(50_000)))
            }
        }

        var reason: String {
            switch self {
            case .silent, .stalledMidway: "said nothing for"
            case .cutShort: "part way"
            case .overTheLimit, .longErrorBody: "limit"
            case .malformed: "malformed"
            }
        }
    }

    static func answer(_ chunk: [UInt8], crc: UInt32? = nil) -> [UInt8] {
        let head = "HTTP/1.1 200 OK\r\nContent-Length: \(chunk.count)\r\n\(SpeedyHeader.crc32c): \(CRCFormat.hex(crc ?? CRC32C.checksum(chunk)))\r\n\r\n"
        return Array(head.utf8) + chunk
    }
}

/// A member on 127.0.0.1 that answers each request (a head ending in a blank line) as its script
/// says, counting connections and keeping the requests' text.
final class ScriptedMember: Sendable {
    enum Reply: Sendable {
        case send([UInt8])
        case sendThenClose([UInt8])
        case silent
    }

    /// What the member has seen.
    final class Log: Sendable {
        let state = Mutex<(connections: Int, requests: [String])>((0, []))
    }

    private let channel: any Channel
    private let log = Log()
    /// The member's own event loop, and its readers': other suites running in parallel in this
    /// process cannot hold them up (a loop of the shared group kept busy for seconds would look
    /// like a silent member). Two, as a member and its reader never share a thread in a cluster.
    private let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let readerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let port: Int

    var connections: Int { log.state.withLock { $0.connections } }
    var requests: [String] { log.state.withLock { $0.requests } }
    var client: ChunkServerClient {
        ChunkServerClient(
            baseURL: "http://127.0.0.1:\(port)", timeout: .seconds(60),
            transport: ClusterTransport(secret: ClusterSecret("read-client-test-secret-0123456789")))
    }

    /// A reader on the member's event loop; by default one that waits out a stalled test process
    /// (a member falls silent only where a test means it to).
    func reader(_ options: ChunkReadClient.Options = .init(silenceLimit: .seconds(60))) -> ChunkReadClient {
        ChunkReadClient(options: options, group: readerGroup)
    }

    init(_ script: @escaping @Sendable (_ index: Int, _ request: String) -> Reply) async throws {
        let log = self.log
        channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                log.state.withLock { $0.connections += 1 }
                return child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.addHandler(ScriptedAnswerer(log: log, script: script))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = channel.localAddress?.port ?? 0
    }

    func stop() {
        try? channel.close().wait()
        group.shutdownGracefully { _ in }
        readerGroup.shutdownGracefully { _ in }
    }
}

private final class ScriptedAnswerer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let log: ScriptedMember.Log
    let script: @Sendable (Int, String) -> ScriptedMember.Reply
    var pending = ""

    init(log: ScriptedMember.Log, script: @escaping @Sendable (Int, String) -> ScriptedMember.Reply) {
        self.log = log
        self.script = script
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        pending += String(buffer: unwrapInboundIn(data))
        while let end = pending.range(of: "\r\n\r\n") {
            let request = String(pending[..<end.upperBound])
            pending = String(pending[end.upperBound...])
            let index = log.state.withLock { s in
                s.requests.append(request)
                return s.requests.count - 1
            }
            switch script(index, request) {
            case .send(let bytes):
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
            case .sendThenClose(let bytes):
                let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes))).whenComplete { _ in loopBound.value.close(promise: nil) }
            case .silent:
                break
            }
        }
    }
}

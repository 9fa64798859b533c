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
import Synchronization
import Testing

@testable import ChunkServer

/// The role table (issue 25, part 1): each role's secret is known by its hash, a table reads back
/// what it wrote, and a table with one bad line is refused whole, saying which line.
@Suite("Role table")
struct RoleTableTests {
    static let secrets: [ClusterRole: ClusterSecret] = Dictionary(uniqueKeysWithValues: ClusterRole.allCases.map { ($0, ClusterSecret.generate()) })

    static var table: RoleTable {
        RoleTable(
            entries: ClusterRole.allCases.map { role in
                let secret = secrets[role]!
                return RoleTable.Entry(
                    role: role, secret: secret, ticketKey: role == .imageserver ? ChunkTicketKey.publicKey(signingWith: secret) : nil)
            })
    }

    func refusal(_ text: String) -> RoleTable.ParseError? {
        do {
            _ = try RoleTable.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func theTableReadsBackAndKnowsEachRoleBySecret() throws {
        let table = Self.table
        let read = try RoleTable.parse(table.text)
        #expect(read == table)
        #expect(read.ticketKeys.count == 1)
        for (role, secret) in Self.secrets {
            #expect(read.role(carriedBy: secret.authorization) == role)
            // The secret itself is nowhere in the table.
            #expect(!table.text.contains(secret.value))
        }
        let chunkserver = Self.secrets[.chunkserver]!.value
        #expect(read.role(carriedBy: nil) == nil)
        #expect(read.role(carriedBy: chunkserver) == nil)
        #expect(read.role(carriedBy: "Basic " + chunkserver) == nil)
        #expect(read.role(carriedBy: "Bearer " + chunkserver + "x") == nil)
        #expect(read.role(carriedBy: "Bearer " + chunkserver.dropLast()) == nil)
        #expect(read.role(carriedBy: "Bearer " + ClusterSecret.generate().value) == nil)
    }

    @Test func commentsBlankLinesAndLineEndsAreIgnored() throws {
        let hash = RoleTable.hash(Self.secrets[.metaserver]!.value.utf8).hexString
        let read = try RoleTable.parse("# a comment\n\n   \r\n\tmetaserver \t\(hash)\r\n  # another\n")
        #expect(read.entries == [RoleTable.Entry(role: .metaserver, secret: Self.secrets[.metaserver]!)])
    }

    @Test func aTableWithOneBadLineIsRefusedSayingWhich() {
        let hash = String(repeating: "ab", count: 32)
        let key = "ed25519:" + String(repeating: "A", count: 43)
        #expect(refusal("") == .empty)
        #expect(refusal("# nothing but comments\n\n") == .empty)
        let cases: [(String, Int)] = [
            ("chunkmaster \(hash)\nwizard \(hash.dropLast(2))cd", 2),
            ("chunkmaster \(hash.dropLast())", 1),
            ("chunkmaster \(hash.uppercased())", 1),
            ("chunkmaster \(hash)zz", 1),
            ("chunkmaster", 1),
            ("chunkmaster \(hash) \(key)", 1),
            ("imageserver \(hash) ed25519:short", 1),
            ("imageserver \(hash) rsa:" + String(repeating: "A", count: 43), 1),
            ("imageserver \(hash) \(key) extra", 1),
            ("chunkmaster \(hash)\nmetaserver \(hash)", 2),
            ("# " + String(repeating: "x", count: 300), 1),
        ]
        for (text, line) in cases {
            guard case .line(let number, _) = refusal(text) else {
                Issue.record("accepted: \(text)")
                continue
            }
            #expect(number == line, "\(text)")
        }
        let many = (0...RoleTable.maximumEntries).map { "operator " + RoleTable.hash(Array("secret-\($0)".utf8)).hexString }
        #expect(refusal(many.joined(separator: "\n")) == .tooMany(RoleTable.maximumEntries + 1))
    }

    @Test func aTableFileIsReReadAndABadOneKeepsTheTableHeld() throws {
        let dir = try TemporaryDirectory("role-table")
        defer { dir.remove() }
        let path = dir.path + "/roles"
        try Self.table.text.write(toFile: path, atomically: true, encoding: .utf8)
        let file = try RoleTableFile(path: path)
        #expect(file.role(carriedBy: Self.secrets[.tracker]!.authorization) == .tracker)
        let replacement = ClusterSecret.generate()
        try RoleTable(entries: [RoleTable.Entry(role: .tracker, secret: replacement)]).text.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try file.reload() == 1)
        #expect(file.role(carriedBy: Self.secrets[.tracker]!.authorization) == nil)
        #expect(file.role(carriedBy: replacement.authorization) == .tracker)
        try "tracker nothex\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RoleTable.LoadError.self) { try file.reload() }
        #expect(file.role(carriedBy: replacement.authorization) == .tracker)
    }

    // MARK: chunk tickets signed by an imageserver (v2)

    static let chunk = ChunkKey(group: 7, fileId: 42)
    static let now: Int64 = 1_800_000_000_000

    @Test func anImageserversTicketChecksWithItsPublicKeyWhichCannotSign() throws {
        let secret = Self.secrets[.imageserver]!
        let signer = ChunkTicketKey(signingWith: secret)
        let verifier = try #require(ChunkTicketKey(verifying: ChunkTicketKey.publicKey(signingWith: secret)))
        #expect(signer.canSign && !verifier.canSign)
        let ticket = signer.ticket(for: Self.chunk, expiresMs: Self.now + 60_000)
        #expect(ticket.hasPrefix("v2.7.42."))
        try verifier.check(ticket, for: Self.chunk, nowMs: Self.now)
        #expect(throws: ChunkTicketError.otherChunk) { try verifier.check(ticket, for: ChunkKey(group: 7, fileId: 43), nowMs: Self.now) }
        #expect(throws: ChunkTicketError.expired) { try verifier.check(ticket, for: Self.chunk, nowMs: Self.now + 60_000) }
        // Another imageserver's key, and the v1 key of the same secret, did not sign it.
        let other = try #require(ChunkTicketKey(verifying: ChunkTicketKey.publicKey(signingWith: ClusterSecret.generate())))
        #expect(throws: ChunkTicketError.badSignature) { try other.check(ticket, for: Self.chunk, nowMs: Self.now) }
        #expect(throws: ChunkTicketError.badSignature) { try ChunkTicketKey(secret: secret).check(ticket, for: Self.chunk, nowMs: Self.now) }
        // Nor does a v1 ticket check under the imageserver's public key.
        let v1 = ChunkTicketKey(secret: secret).ticket(for: Self.chunk, expiresMs: Self.now + 60_000)
        #expect(throws: ChunkTicketError.badSignature) { try verifier.check(v1, for: Self.chunk, nowMs: Self.now) }
        // Any byte of the signature changed, or the numbers changed, and it no longer checks.
        var altered = Array(ticket.utf8)
        altered[altered.count - 5] = altered[altered.count - 5] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(throws: ChunkTicketError.badSignature) { try verifier.check(String(decoding: altered, as: UTF8.self), for: Self.chunk, nowMs: Self.now) }
        let moved = ticket.replacingOccurrences(of: "v2.7.42.", with: "v2.7.43.")
        #expect(throws: ChunkTicketError.badSignature) { try verifier.check(moved, for: ChunkKey(group: 7, fileId: 43), nowMs: Self.now) }
        // The largest numbers still fit.
        let largest = ChunkKey(group: .max, fileId: .max)
        let big = signer.ticket(for: largest, expiresMs: .max)
        #expect(big.utf8.count <= ChunkTicketKey.maxTicketBytes)
        try verifier.check(big, for: largest, nowMs: Self.now)
        #expect(ChunkTicketKey(verifying: [UInt8](repeating: 1, count: 31)) == nil)
    }

    @Test func theGateOfARoleTableTakesTheListedImageserversTicketsOnly() throws {
        let secret = Self.secrets[.imageserver]!
        let gate = ChunkTicketGate(roles: RoleTableFile(Self.table))
        let now = currentTimeMillis()
        let good = ChunkTicketKey(signingWith: secret).ticket(for: Self.chunk, expiresMs: now + 60_000)
        try gate.admit(good, method: .get, routed: "/v1/chunks/7/42", nowMs: now)
        try gate.admit(good, method: .head, routed: "/v1/chunks/7/42", nowMs: now)
        #expect(throws: ChunkTicketGate.Refusal.forbidden(ChunkTicketError.otherChunk.description)) {
            try gate.admit(good, method: .get, routed: "/v1/chunks/7/41", nowMs: now)
        }
        // A chunkserver's secret (or anyone's but a listed imageserver's) signs nothing it takes.
        let byChunkserver = ChunkTicketKey(signingWith: Self.secrets[.chunkserver]!).ticket(for: Self.chunk, expiresMs: now + 60_000)
        #expect(throws: ChunkTicketGate.Refusal.unauthorized(.badSignature)) {
            try gate.admit(byChunkserver, method: .get, routed: "/v1/chunks/7/42", nowMs: now)
        }
        let v1 = ChunkTicketKey(secret: Self.secrets[.operator]!).ticket(for: Self.chunk, expiresMs: now + 60_000)
        #expect(throws: ChunkTicketGate.Refusal.unauthorized(.badSignature)) { try gate.admit(v1, method: .get, routed: "/v1/chunks/7/42", nowMs: now) }
    }
}

/// The route authorization tables: each role reaches the routes its code calls and no other,
/// the operator every route, and no rule hides a later one.
@Suite("Route authorization")
struct RouteAuthorizationTests {
    @Test func eachRoleReachesItsRoutesOnly() {
        let master = RouteAuthorization.chunkmaster
        #expect(master.allows(.chunkserver, .post, "/v1/heartbeat"))
        #expect(!master.allows(.imageserver, .post, "/v1/heartbeat"))
        #expect(master.allows(.imageserver, .get, "/v1/cluster"))
        #expect(!master.allows(.imageserver, .post, "/v1/cluster"))
        #expect(!master.allows(.imageserver, .delete, "/v1/servers/cs1"))
        #expect(!master.allows(.chunkserver, .post, "/v1/servers/cs1/status"))
        #expect(master.allows(.operator, .delete, "/v1/servers/cs1"))
        // A route no rule names, or one added later, is the operator's alone.
        #expect(!master.allows(.chunkmaster, .get, "/v1/some-route-added-later"))
        #expect(master.allows(.operator, .get, "/v1/some-route-added-later"))

        let meta = RouteAuthorization.metaserver
        #expect(meta.allows(.imageserver, .put, "/v1/manifests"))
        #expect(!meta.allows(.chunkserver, .put, "/v1/manifests"))
        #expect(!meta.allows(.chunkmaster, .post, "/v1/blobs"))
        #expect(meta.allows(.imageserver, .post, "/v1/blobs/repair"))
        #expect(!meta.allows(.imageserver, .get, "/v1/blobs"))
        #expect(meta.allows(.chunkmaster, .get, "/v1/chunks/3/99/users"))
        #expect(!meta.allows(.imageserver, .post, "/v1/gc/sweep"))

        let chunks = RouteAuthorization.chunkserver
        #expect(chunks.allows(.chunkserver, .put, "/v1/chunks/1/2"))
        #expect(!chunks.allows(.chunkserver, .delete, "/v1/chunks/1/2"))
        #expect(chunks.allows(.chunkmaster, .get, "/v1/chunks/1/digests"))
        #expect(!chunks.allows(.imageserver, .get, "/v1/chunks/1/digests"))
        #expect(!chunks.allows(.tracker, .get, "/v1/chunks/1/2"))
        #expect(!chunks.allows(.imageserver, .get, "/v1/chunks/1/2/3"))
        for table in RouteAuthorization.all {
            #expect(table.allows(.monitor, .get, "/metrics"), "\(table.server)")
            #expect(!table.allows(.monitor, .post, "/metrics"), "\(table.server)")
            #expect(!table.allows(.monitor, .get, "/v1/cluster"), "\(table.server)")
        }
    }

    @Test func aPatternMatchesWholeSegmentsAndTheRestOnlyAtItsEnd() {
        let table = RouteAuthorization(
            server: "test",
            rules: [
                .init([.get], "/v1/things/{id}", [.imageserver]),
                .init([], "/v2/**", [.tracker]),
            ])
        #expect(table.allows(.imageserver, .get, "/v1/things/7"))
        #expect(!table.allows(.imageserver, .get, "/v1/things"))
        #expect(!table.allows(.imageserver, .get, "/v1/things/7/8"))
        #expect(!table.allows(.imageserver, .get, "/v1/thingsx/7"))
        #expect(table.allows(.tracker, .delete, "/v2/a/b/c"))
        #expect(table.allows(.tracker, .get, "/v2"))
        #expect(!table.allows(.tracker, .get, "/v3/a"))
    }

    @Test func noRuleHidesALaterOne() {
        for table in RouteAuthorization.all {
            for rule in table.rules {
                // A path of the rule's own shape, numbers for its parameters, must be decided by it.
                let path = rule.path.split(separator: "/").map { $0.hasPrefix("{") ? "1" : String($0) }.joined(separator: "/")
                for method in rule.methods {
                    let decided = table.rule(for: method, "/" + path)
                    #expect(decided?.path == rule.path, "\(table.server): \(method) /\(path) is decided by \(decided?.description ?? "nothing")")
                }
            }
        }
    }
}

/// A chunkserver in process with a role table: each role's secret gets it what the chunkserver's
/// table allows, a chain is passed only to the members the master lists, and agents' tickets
/// must be an imageserver's.
@Suite("Chunkserver with a role table in process")
struct ChunkserverRoleTests {
    static let secrets = RoleTableTests.secrets

    /// How often the chunkserver asked the master for its group's members.
    final class FetchCount: Sendable {
        let count = Mutex(0)
    }

    func header(_ role: ClusterRole) -> HTTPFields { [.authorization: Self.secrets[role]!.authorization] }

    func withChunkserver(
        members: [String], _ test: @escaping @Sendable (any TestClientProtocol, FetchCount) async throws -> Void
    ) async throws {
        let dir = try TemporaryDirectory("role-chunkserver")
        defer { dir.remove() }
        let store = try VolumeChunkStore(
            configuration: VolumeStoreConfiguration(directory: dir.path, volumeSize: 8 << 20, maxChunkBytes: 1 << 20, reserveBytes: 0))
        let security = RoleSecurity(
            secrets: ClusterSecretRing(Self.secrets[.chunkserver]!), roles: RoleTableFile(RoleTableTests.table))
        let configuration = ChunkServerConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), masterURL: "http://127.0.0.1:1", group: 1, store: store.configuration, security: security)
        let fetches = FetchCount()
        let chainMembers = ChainMembers {
            fetches.count.withLock { $0 += 1 }
            return members
        }
        let router = ChunkServer.router(
            store: store, configuration: configuration, counters: TrafficCounters(),
            report: { .initializing(serverId: "cs-test", group: 1, addr: "127.0.0.1:1") }, chainMembers: chainMembers,
            logger: Logger(label: "test"))
        do {
            try await Application(router: router).test(.router) { client in try await test(client, fetches) }
        } catch {
            await store.close()
            throw error
        }
        await store.close()
    }

    @Test func eachRoleGetsWhatItsRowAllows() async throws {
        try await withChunkserver(members: []) { client, _ in
            let body = ByteBuffer(string: "a chunk")
            let put = try await client.execute(uri: "/v1/chunks/1/5", method: .put, headers: header(.imageserver), body: body)
            #expect(put.status == .created)
            #expect(try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: header(.imageserver)).body == body)
            #expect(try await client.execute(uri: "/v1/chunks/1", method: .get, headers: header(.metaserver)).status == .ok)
            #expect(try await client.execute(uri: "/v1/stats", method: .get, headers: header(.chunkmaster)).status == .ok)
            for (role, uri, method) in [
                (ClusterRole.imageserver, "/v1/stats", HTTPRequest.Method.get), (.tracker, "/v1/chunks/1/5", .get),
                (.chunkserver, "/v1/chunks/1/5", .delete), (.monitor, "/v1/chunks/1", .get), (.metaserver, "/v1/chunks/1/6", .put),
            ] {
                let refused = try await client.execute(uri: uri, method: method, headers: header(role), body: body)
                #expect(refused.status == .forbidden, "\(role) \(method) \(uri)")
                #expect(String(buffer: refused.body).contains("\"FORBIDDEN\""))
                #expect(String(buffer: refused.body).contains("the \(role) role may not call"))
            }
            // The one cluster secret of a cluster without roles is no credential here.
            let shared = try await client.execute(
                uri: "/v1/chunks/1/5", method: .get, headers: [.authorization: ChunkRoutesTests.secret.authorization])
            #expect(shared.status == .unauthorized)
            #expect(try await client.execute(uri: "/v1/chunks/1/5", method: .get).status == .unauthorized)
            // An agent's ticket from an imageserver reads the chunk; one signed v1 under a secret does not.
            let now = currentTimeMillis()
            let ticket = ChunkTicketKey(signingWith: Self.secrets[.imageserver]!).ticket(for: ChunkKey(group: 1, fileId: 5), expiresMs: now + 60_000)
            let read = try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: [.authorization: ChunkMap.authorization(ticket: ticket)])
            #expect(read.status == .ok && read.body == body)
            let v1 = ChunkTicketKey(secret: Self.secrets[.chunkserver]!).ticket(for: ChunkKey(group: 1, fileId: 5), expiresMs: now + 60_000)
            #expect(try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: [.authorization: ChunkMap.authorization(ticket: v1)]).status == .unauthorized)
            #expect(try await client.execute(uri: "/metrics", method: .get, headers: header(.monitor)).status == .ok)
        }
    }

    @Test func aChainIsPassedOnlyToTheMembersTheMasterLists() async throws {
        try await withChunkserver(members: ["127.0.0.1:1", "127.0.0.1:2"]) { client, fetches in
            let body = ByteBuffer(string: "chained")
            var headers = header(.imageserver)
            headers[HTTPField.Name(SpeedyHeader.crc32c)!] = CRCFormat.hex(CRC32C.checksum(body))
            headers[HTTPField.Name(SpeedyHeader.chain)!] = "127.0.0.1:2,127.0.0.1:9"
            let refused = try await client.execute(uri: "/v1/chunks/1/8", method: .put, headers: headers, body: body)
            #expect(refused.status == .forbidden)
            #expect(String(buffer: refused.body).contains("127.0.0.1:9, not a member of group 1"), "\(String(buffer: refused.body))")
            #expect(fetches.count.withLock { $0 } == 1)
            // Nothing was stored: the chunk is not there.
            #expect(try await client.execute(uri: "/v1/chunks/1/8", method: .get, headers: header(.imageserver)).status == .notFound)
            // A second stranger within the second asks the master no more.
            _ = try await client.execute(uri: "/v1/chunks/1/8", method: .put, headers: headers, body: body)
            #expect(fetches.count.withLock { $0 } == 1)
            // Members pass the check (nothing listens there, so the chain itself then fails).
            headers[HTTPField.Name(SpeedyHeader.chain)!] = "127.0.0.1:2"
            let passed = try await client.execute(uri: "/v1/chunks/1/8", method: .put, headers: headers, body: body)
            #expect(passed.status != .forbidden, "\(String(buffer: passed.body))")
        }
    }
}

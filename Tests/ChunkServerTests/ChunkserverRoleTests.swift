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

    /// What `role`'s processes send a chunkserver.
    func header(_ role: ClusterRole) -> HTTPFields { [.authorization: ClusterCredential.authorization(Self.secrets[role]!, for: .chunkserver)] }

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
        let chainMembers = ChainMembers { chainMembers in
            fetches.count.withLock { $0 += 1 }
            chainMembers.update(members)
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
                (ClusterRole.imageserver, "/v1/stats", HTTPRequest.Method.get),
                (.chunkserver, "/v1/chunks/1/5", .delete), (.monitor, "/v1/chunks/1", .get), (.metaserver, "/v1/chunks/1/6", .put),
            ] {
                let refused = try await client.execute(uri: uri, method: method, headers: header(role), body: body)
                #expect(refused.status == .forbidden, "\(role) \(method) \(uri)")
                #expect(String(buffer: refused.body).contains("\"FORBIDDEN\""))
                #expect(String(buffer: refused.body).contains("the \(role) role may not call"))
            }
            // A role with nothing to call here (the tracker) holds no credential for chunkservers;
            // a role's secret itself, its credential for another kind of port, and the one cluster
            // secret of a cluster without roles are no credentials here either.
            for authorization in [
                ClusterCredential.authorization(Self.secrets[.tracker]!, for: .chunkserver),
                Self.secrets[.imageserver]!.authorization, ClusterCredential.authorization(Self.secrets[.imageserver]!, for: .metaserver),
                ChunkRoutesTests.secret.authorization, ClusterCredential.authorization(ChunkRoutesTests.secret, for: .chunkserver),
            ] {
                let refused = try await client.execute(uri: "/v1/chunks/1/5", method: .get, headers: [.authorization: authorization])
                #expect(refused.status == .unauthorized)
            }
            #expect(try await client.execute(uri: "/v1/chunks/1/5", method: .get).status == .unauthorized)
            // An agent's ticket from an imageserver reads the chunk; one signed v1 under a secret does not.
            let now = currentTimeMillis()
            let ticket = ChunkTicketKey.signer(for: Self.secrets[.imageserver]!).ticket(for: ChunkKey(group: 1, fileId: 5), expiresMs: now + 60_000)
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
            // Strangers asked for in a loop ask the master at most once a second.
            let started = ContinuousClock.now
            for _ in 0..<20 {
                #expect(try await client.execute(uri: "/v1/chunks/1/8", method: .put, headers: headers, body: body).status == .forbidden)
            }
            let seconds = Int((ContinuousClock.now - started).components.seconds)
            #expect(fetches.count.withLock { $0 } <= seconds + 2, "\(fetches.count.withLock { $0 }) heartbeats in \(seconds) s")
            // Members pass the check (nothing listens there, so the chain itself then fails).
            headers[HTTPField.Name(SpeedyHeader.chain)!] = "127.0.0.1:2"
            let passed = try await client.execute(uri: "/v1/chunks/1/8", method: .put, headers: headers, body: body)
            #expect(passed.status != .forbidden, "\(String(buffer: passed.body))")
        }
    }

    @Test func withOneSharedSecretThePortTakesTheSecretOrTheCredentialForItsKind() async throws {
        let secret = ChunkRoutesTests.secret
        try await ChunkRoutesTests().withChunkserver(security: RoleSecurity(secret: secret)) { client, _ in
            let credential: HTTPFields = [.authorization: ClusterCredential.authorization(secret, for: .chunkserver)]
            let elsewhere: HTTPFields = [.authorization: ClusterCredential.authorization(secret, for: .metaserver)]
            let raw: HTTPFields = [.authorization: secret.authorization]
            let byCredential = try await client.execute(uri: "/v1/stats", method: .get, headers: credential)
            let bySecret = try await client.execute(uri: "/v1/stats", method: .get, headers: raw)
            let byOther = try await client.execute(uri: "/v1/stats", method: .get, headers: elsewhere)
            #expect(byCredential.status == .ok)
            #expect(bySecret.status == .ok)
            #expect(byOther.status == .unauthorized)
        }
    }
}

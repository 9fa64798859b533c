import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing
import SpeedyTestSupport

extension ProcessSuites {
    /// Issue 23, part 2: a client that may pull a blob gets its chunk map from the registry and
    /// reads every chunk straight from a chunkserver with the map's tickets, holding no cluster
    /// secret; whoever may not pull gets the blob's own 401 or 403, and a ticket reads its chunk
    /// and nothing else.
    @Suite("Chunk maps and tickets", .serialized)
    struct ChunkTicketTests {
        typealias Header = (String, String)

        func basic(_ user: String, _ password: String) -> Header {
            ("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString())
        }

        func randomBytes(_ count: Int) -> [UInt8] {
            TestBytes.random(count, seed: Int.random(in: .min ... .max))
        }

        /// Pushes `data` to `repository` as alice; returns its digest.
        func push(_ data: [UInt8], to repository: String, _ client: ServiceClient) async throws -> Digest {
            let digest = Digest.of(data)
            let pushed = try await client.send(
                .POST, "/v2/\(repository)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data), headers: [basic("alice", "alice-pass")])
            #expect(pushed.status == 201, "push to \(repository): \(pushed.status)")
            return digest
        }

        /// The chunk map of `digest` in `repository` as `login` sees it.
        func chunkMap(_ digest: Digest, in repository: String, _ client: ServiceClient, _ login: Header) async throws -> ChunkMap {
            let reply = try await client.send(.GET, "/v2/\(repository)/_speedy/chunks/\(digest)", headers: [login])
            #expect(reply.status == 200)
            #expect(reply.headers.first(name: "Content-Type") == "application/json")
            #expect(reply.headers.first(name: "Cache-Control") == "no-store")
            return try JSONDecoder().decode(ChunkMap.self, from: Data(reply.body.readableBytesView))
        }

        /// Reads every chunk of `map` from its first member with its ticket alone, checking each
        /// CRC; returns the blob's bytes.
        func readChunks(_ map: ChunkMap) async throws -> [UInt8] {
            var blob: [UInt8] = []
            for entry in map.chunks {
                let member = try #require(entry.members.first)
                // A transport without the secret: what `speedy peer` has.
                let client = ChunkServerClient(baseURL: member, transport: .plain)
                let (data, crc) = try await client.getChecked(entry.key, ticket: entry.ticket)
                #expect(crc == entry.crc && data.readableBytes == Int(entry.length))
                blob += Array(data.readableBytesView)
            }
            return blob
        }

        @Test func aPullerReadsChunksWithTicketsAndNoOneElseGetsAMap() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let users = cluster.root + "/htpasswd"
            var lines: [String] = []
            for user in ["alice", "reader", "outsider"] { lines.append(try await RegistryAuthTests().htpasswdLine(user: user, password: "\(user)-pass")) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: users, atomically: true, encoding: .utf8)
            try "alice ** pull,push,delete\nreader team/* pull\noutsider other/* pull\n".write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(
                groups: 2, imageserverArguments: ["--htpasswd", users, "--access", cluster.root + "/access", "--chunk-size", "64K", "--ticket-lifetime", "5m"])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let a = try await push(randomBytes(300_000), to: "team/app", client)
            let b = try await push(randomBytes(200_000), to: "team/app", client)
            let elsewhere = try await push(randomBytes(1000), to: "team/other", client)

            // The map: every chunk in blob order with the members of its own group, as URLs.
            let started = currentTimeMillis()
            let map = try await chunkMap(a, in: "team/app", client, basic("reader", "reader-pass"))
            #expect(map.digest == a.description && map.size == 300_000 && map.chunks.count == 5)
            #expect(map.chunks.reduce(0) { $0 + UInt64($1.length) } == map.size)
            #expect(map.expiresMs >= started + 290_000 && map.expiresMs <= currentTimeMillis() + 300_000, "--ticket-lifetime 5m")
            let groupOf = Dictionary(uniqueKeysWithValues: registry.chunkservers.map { ("http://" + $0.addr, $0.name.hasPrefix("g2-") ? UInt32(2) : 1) })
            for entry in map.chunks {
                #expect(entry.members.count == 3 && entry.members.allSatisfy { groupOf[$0] == entry.group }, "\(entry.members)")
                #expect(!entry.ticket.isEmpty)
            }
            #expect(Set(map.chunks.map(\.group)).count == 2, "chunks of both groups")
            // The readable members take turns being first, so a fleet reads from all of them.
            #expect(Set(map.chunks.compactMap(\.members.first)).count >= 3, "\(map.chunks.map(\.members))")
            // Each chunk read from a chunkserver without the secret: the bytes are the blob.
            #expect(Digest.of(try await readChunks(map)) == a)

            // A token for pull works as Basic does.
            let token = try await RegistryAuthTests().token(client, scope: "repository:team/app:pull", login: ("reader", "reader-pass"))
            _ = try await chunkMap(a, in: "team/app", client, ("Authorization", "Bearer \(try #require(token.token))"))

            try await refusals(registry, client, a: a, elsewhere: elsewhere)
            try await ticketsReadTheirChunkOnly(map, other: try await chunkMap(b, in: "team/app", client, basic("alice", "alice-pass")))
            #expect(!cluster.log("cs1").contains(map.chunks[0].ticket) && !cluster.log("imageserver").contains(map.chunks[0].ticket))
        }

        /// Whoever may not pull the blob gets what its GET gets: anonymous 401 with the pull
        /// challenge, a user without the right 403 DENIED, a blob of another repository 404.
        func refusals(_ registry: ClusterHarness.Registry, _ client: ServiceClient, a: Digest, elsewhere: Digest) async throws {
            let cases: [(String, [Header], Int, String)] = [
                ("team/app/%@/\(a)", [], 401, "UNAUTHORIZED"),
                ("team/app/%@/\(a)", [basic("outsider", "outsider-pass")], 403, "DENIED"),
                ("team/app/%@/\(a)", [basic("reader", "wrong")], 401, "UNAUTHORIZED"),
                ("team/app/%@/\(elsewhere)", [basic("reader", "reader-pass")], 404, "BLOB_UNKNOWN"),
                ("team/app/%@/sha256:nothex", [basic("reader", "reader-pass")], 400, "DIGEST_INVALID"),
            ]
            for (template, headers, status, code) in cases {
                let map = try await client.send(.GET, "/v2/" + template.replacingOccurrences(of: "%@", with: "_speedy/chunks"), headers: headers)
                let blob = try await client.send(.GET, "/v2/" + template.replacingOccurrences(of: "%@", with: "blobs"), headers: headers)
                #expect(map.status == status && errorCode(map.body) == code, "\(template) \(headers): \(map.status)")
                #expect(blob.status == status && errorCode(blob.body) == code, "the blob's GET: \(template) \(headers): \(blob.status)")
                #expect(map.headers.first(name: "WWW-Authenticate") == blob.headers.first(name: "WWW-Authenticate"))
            }
            let challenge = try await client.send(.GET, "/v2/team/app/_speedy/chunks/\(a)")
            #expect(challenge.headers.first(name: "WWW-Authenticate")?.hasSuffix("scope=\"repository:team/app:pull\"") == true)
        }

        /// A ticket reads its own chunk with GET and HEAD; any other chunk (of another blob too),
        /// method or chunkserver route is 403, no ticket or a forged one 401.
        func ticketsReadTheirChunkOnly(_ map: ChunkMap, other: ChunkMap) async throws {
            let entry = map.chunks[0]
            let service = ServiceClient(baseURL: entry.members[0], transport: .plain)
            let ticket = [("Authorization", ChunkMap.authorization(ticket: entry.ticket))]
            let path = "/v1/chunks/\(entry.group)/\(entry.fileId)"
            #expect(try await service.send(.HEAD, path, headers: ticket).status == 200)
            // Blob B's chunk in the same group, on the same server: not with A's ticket.
            let foreign = try #require(other.chunks.first { $0.group == entry.group })
            do {
                _ = try await ChunkServerClient(baseURL: entry.members[0], transport: .plain).getChecked(foreign.key, ticket: entry.ticket)
                Issue.record("a ticket of blob A read a chunk of blob B")
            } catch {
                #expect(error.httpStatus == 403)
            }
            for (method, route) in try HostileClientTests.internalRoutes().filter({ $0.role == "ChunkServer" }).map({ ($0.method, $0.path) }) {
                let target = route.replacingOccurrences(of: "/v1/chunks/1", with: "/v1/chunks/\(entry.group)").replacingOccurrences(of: "4242", with: "\(entry.fileId)")
                let reply = try await service.send(method, target, headers: ticket)
                let expected = target == path && (method == .GET || method == .HEAD) ? 200 : route == "/v1/health" ? 200 : 403
                #expect(reply.status == expected, "\(method) \(target) with a ticket: \(reply.status)")
            }
            #expect(try await service.send(.GET, path).status == 401)
            var forged = Array(entry.ticket)
            forged[forged.count - 2] = forged[forged.count - 2] == "A" ? "B" : "A"
            let refused = try await service.send(.GET, path, headers: [("Authorization", ChunkMap.authorization(ticket: String(forged)))])
            #expect(refused.status == 401)
            #expect(try await service.send(.GET, path, headers: ticket).status == 200, "nothing above used the chunk up")
        }
    }
}

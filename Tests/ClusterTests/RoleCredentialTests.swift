import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// A credential per role (issue 25, part 1), on real processes: each role's secret opens its
    /// own routes and no other, a chain is passed only to the group's members, and `speedy
    /// credentials` makes, keeps and lists the secrets.
    @Suite("Role credentials", .serialized)
    struct RoleCredentialTests {
        func secret(_ role: ClusterRole) throws -> ClusterSecret {
            try ClusterSecret.load(path: ClusterHarness.credentials.secretPath(role))
        }

        /// A client sending `role`'s credential for ports of kind `port` (as the role's own clients do).
        func client(_ url: String, as role: ClusterRole, at port: ClusterRole?) throws -> ServiceClient {
            var transport = ClusterHarness.transport.with(secret: try secret(role))
            transport.boundCredentials = port != nil
            return ServiceClient(baseURL: url, timeout: .seconds(20), transport: transport, audience: port)
        }

        @Test func eachRoleIsHeldToItsRoutesOnTheLivePorts() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            // The roles run under the table: a push goes through every role's routes.
            let blob = TestBytes.random(3 << 20, seed: 25)
            let registryClient = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: .plain)
            let push = try await registryClient.send(.POST, "/v2/roles/blobs/uploads/?digest=\(Digest.of(blob))", body: ByteBuffer(bytes: blob))
            #expect(push.status == 201, "\(String(buffer: push.body))")
            let pulled = try await registryClient.send(.GET, "/v2/roles/blobs/\(Digest.of(blob))")
            #expect(pulled.status == 200 && Array(buffer: pulled.body) == blob)

            let chunkserver = "http://" + registry.chunkservers[0].addr
            let refused: [(ClusterRole, String, ClusterRole, HTTPMethod, String)] = [
                (.imageserver, registry.masterURL, .chunkmaster, .DELETE, "/v1/servers/cs1"),
                (.imageserver, registry.masterURL, .chunkmaster, .POST, "/v1/groups"),
                (.tracker, registry.masterURL, .chunkmaster, .POST, "/v1/fileids"),
                (.metaserver, chunkserver, .chunkserver, .PUT, "/v1/chunks/1/77"),
                (.monitor, chunkserver, .chunkserver, .GET, "/v1/chunks/1"),
                (.monitor, registry.masterURL, .chunkmaster, .GET, "/v1/cluster"),
            ]
            for (role, url, port, method, path) in refused {
                let reply = try await client(url, as: role, at: port).send(method, path, body: ByteBuffer(string: "{}"))
                #expect(reply.status == 403, "\(role) \(method) \(path): \(reply.status) \(String(buffer: reply.body))")
                #expect(String(buffer: reply.body).contains("the \(role) role may not call"), "\(String(buffer: reply.body))")
            }
            // A role with nothing to call on a kind of port holds no credential for it at all; nor
            // does a role's secret itself, or its credential for another kind of port, open anything.
            let unknown: [(ClusterRole, String, ClusterRole?, HTTPMethod, String)] = [
                (.chunkserver, registry.metaURL, .metaserver, .PUT, "/v1/manifests"),
                (.chunkserver, registry.metaURL, .metaserver, .POST, "/v1/gc/sweep"),
                (.imageserver, registry.metaURL, nil, .GET, "/v1/repositories"),
                (.imageserver, registry.metaURL, .chunkserver, .GET, "/v1/repositories"),
            ]
            for (role, url, port, method, path) in unknown {
                let reply = try await client(url, as: role, at: port).send(method, path, body: ByteBuffer(string: "{}"))
                #expect(reply.status == 401, "\(role) \(method) \(path) as \(port?.rawValue ?? "its secret"): \(reply.status)")
            }
            // What each role's code calls gets through.
            #expect(try await client(registry.masterURL, as: .imageserver, at: .chunkmaster).send(.GET, "/v1/cluster").status == 200)
            #expect(try await client(registry.metaURL, as: .imageserver, at: .metaserver).send(.GET, "/v1/repositories").status == 200)
            #expect(try await client(chunkserver, as: .chunkmaster, at: .chunkserver).send(.GET, "/v1/stats").status == 200)
            #expect(try await client(chunkserver, as: .metaserver, at: .chunkserver).send(.GET, "/v1/chunks/1").status == 200)
            for (url, port) in [(registry.masterURL, ClusterRole.chunkmaster), (registry.metaURL, .metaserver), (chunkserver, .chunkserver), (registry.registryURL, .imageserver)] {
                #expect(try await client(url, as: .monitor, at: port).send(.GET, "/metrics").status == 200, "\(url)")
            }
            // The one cluster secret of a cluster without roles opens nothing here.
            let stranger = ServiceClient(baseURL: registry.masterURL, transport: ClusterHarness.transport.with(secret: ClusterSecret.generate()))
            #expect(try await stranger.send(.GET, "/v1/cluster").status == 401)

            // A chain naming a host outside the group is refused, and nothing stored.
            let body = ByteBuffer(string: "not for strangers")
            let chained = try await client(chunkserver, as: .imageserver, at: .chunkserver).send(
                .PUT, "/v1/chunks/1/78", body: body,
                headers: [
                    (SpeedyHeader.chain, registry.chunkservers[1].addr + ",127.0.0.1:9"),
                    (SpeedyHeader.crc32c, CRCFormat.hex(CRC32C.checksum(body))),
                ])
            #expect(chained.status == 403, "\(String(buffer: chained.body))")
            #expect(String(buffer: chained.body).contains("127.0.0.1:9, not a member of group 1"))
            for member in registry.chunkservers {
                #expect(try await client("http://" + member.addr, as: .imageserver, at: .chunkserver).send(.GET, "/v1/chunks/1/78").status == 404)
            }

            // The operator's tools work; no log holds a secret.
            let status = try await cluster.chunktool(["status", "--master", registry.masterURL])
            #expect(status.status == 0, "\(status.output)")
            let logs = ["master", "cs1", "cs2", "cs3", "meta", "imageserver"].map { cluster.log($0) }.joined()
            #expect(logs.contains("may not call"))
            for role in ClusterRole.allCases {
                #expect(!logs.contains(try secret(role).value), "\(role)'s secret in a log")
            }
        }

        @Test func speedyCredentialsMakesKeepsAndRotatesTheSecrets() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let speedy = ClusterHarness.binDirectory + "/speedy"
            let dir = cluster.root + "/credentials"
            let first = try await ClusterHarness.run(speedy, ["credentials", "--out", dir, "--json"], errors: .discarded)
            #expect(first.status == 0, "\(first.output)")
            let written = try JSONDecoder().decode(RoleCredentialFiles.Written.self, from: Data(first.output.utf8))
            let ports = ClusterRole.allCases.map { role in ClusterRole.servers.filter { RouteAuthorization.of($0)!.admitsAnything(role) }.count }
            #expect(written.entries == ports.reduce(0, +))
            #expect(Set(written.secrets.keys) == Set(ClusterRole.allCases.map(\.rawValue)))
            let files = RoleCredentialFiles(directory: dir)
            let imageserverSecret = try ClusterSecret.load(path: files.secretPath(.imageserver))
            let mode = try FileManager.default.attributesOfItem(atPath: files.secretPath(.imageserver))[.posixPermissions] as? Int
            #expect(mode == 0o600)
            // Run again: the secrets are kept; a second line (a rotation) joins the table.
            let added = ClusterSecret.generate()
            try "\(imageserverSecret.value)\n\(added.value)\n".write(toFile: files.secretPath(.imageserver), atomically: true, encoding: .utf8)
            let second = try await ClusterHarness.run(speedy, ["credentials", "--out", dir], errors: .discarded)
            #expect(second.status == 0, "\(second.output)")
            #expect(try ClusterSecret.load(path: files.secretPath(.imageserver)) == imageserverSecret)
            let table = try RoleTableFile(path: files.tablePath).table
            #expect(table.entries.count == written.entries + ClusterRole.servers.filter { RouteAuthorization.of($0)!.admitsAnything(.imageserver) }.count)
            #expect(table.role(carriedBy: ClusterCredential.authorization(added, for: .metaserver), at: .metaserver) == .imageserver)
            #expect(table.role(carriedBy: added.authorization, at: .metaserver) == nil)
            #expect(table.ticketKeys.count == 2)
            // The table holds no secret, and every role's user can read it.
            #expect(try FileManager.default.attributesOfItem(atPath: files.tablePath)[.posixPermissions] as? Int == 0o644)

            // The credential a secret sends a kind of port, for curl and Prometheus.
            let printed = try await ClusterHarness.run(
                speedy, ["credentials", "--print-credential", "metaserver", "--secret-file", files.secretPath(.imageserver)], errors: .discarded)
            #expect(printed.status == 0)
            #expect(printed.output.trimmingCharacters(in: .whitespacesAndNewlines) == ClusterCredential.token(imageserverSecret, for: .metaserver))
            let bogus = try await ClusterHarness.run(speedy, ["credentials", "--print-credential", "operator"])
            #expect(bogus.status != 0 && bogus.output.contains("takes a kind of port"), "\(bogus.output)")

            // A role given another role's secret refuses to start, and says whose it is.
            let wrong = try await ClusterHarness.run(
                speedy,
                [
                    "metaserver", "--listen", "127.0.0.1:\(ClusterHarness.freePort())", "--data", cluster.root + "/meta",
                    "--cluster-secret-file", files.secretPath(.chunkserver), "--role-table", files.tablePath,
                ])
            #expect(wrong.status != 0)
            #expect(wrong.output.contains("is the chunkserver's in it"), "\(wrong.output)")
            let broken = cluster.root + "/broken-roles"
            try "metaserver 1234\n".write(toFile: broken, atomically: true, encoding: .utf8)
            let unreadable = try await ClusterHarness.run(
                speedy,
                [
                    "metaserver", "--listen", "127.0.0.1:\(ClusterHarness.freePort())", "--data", cluster.root + "/meta2",
                    "--cluster-secret-file", files.secretPath(.metaserver), "--role-table", broken,
                ])
            #expect(unreadable.status != 0)
            #expect(unreadable.output.contains("line 1"), "\(unreadable.output)")
        }
    }
}

/// The route authorization tables against the sources: every rule names a route its port
/// registers, with the same method, so a route renamed cannot leave a rule that matches nothing
/// (and its callers refused).
@Suite("Route tables against the sources")
struct RouteTableSourceTests {
    /// `METHOD path` of every route registered under `Sources/Servers/<directory>`, parameters
    /// written `{}`.
    static func registered(in directory: String) throws -> Set<String> {
        let pattern = try NSRegularExpression(pattern: #"router\.(get|post|put|delete|patch|head)\("([^"]+)""#)
        let parameter = try NSRegularExpression(pattern: #"\{[^}]*\}"#)
        var routes: Set<String> = []
        let root = CompletionsTests.root + "/Sources/Servers/" + directory
        for file in try FileManager.default.contentsOfDirectory(atPath: root) where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let method = String(text[Range(match.range(at: 1), in: text)!]).uppercased()
                let path = String(text[Range(match.range(at: 2), in: text)!])
                routes.insert(method + " " + parameter.stringByReplacingMatches(in: path, range: NSRange(path.startIndex..., in: path), withTemplate: "{}"))
            }
        }
        return routes
    }

    @Test func everyRuleNamesARouteItsPortServes() throws {
        let parameter = try NSRegularExpression(pattern: #"\{[^}]*\}"#)
        for (table, directory) in [(RouteAuthorization.chunkmaster, "ChunkMaster"), (.metaserver, "MetaServer"), (.chunkserver, "ChunkServer")] {
            let routes = try Self.registered(in: directory)
            #expect(routes.count >= 8, "\(directory): found only \(routes.count) routes")
            for rule in table.rules where rule.path != "/metrics" {
                let path = parameter.stringByReplacingMatches(in: rule.path, range: NSRange(rule.path.startIndex..., in: rule.path), withTemplate: "{}")
                for method in rule.methodNames {
                    #expect(routes.contains(method + " " + path), "\(table.server): \(method) \(rule.path) is no route of \(directory)")
                }
            }
        }
    }
}

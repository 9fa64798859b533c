import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// `--audit-log`: a JSON line for each push, delete and refusal, with who, from where, what
    /// and the outcome, and nothing of a password.
    @Suite("Audit log")
    struct AuditLogTests {
        /// A line as docs/security.md writes it down: the field names are the contract.
        struct Entry: Decodable {
            var time: String
            var event: String
            var user: String?
            var client: String
            var proxy: String?
            var method: String
            var path: String
            var repository: String?
            var reference: String?
            var digest: String?
            var status: Int
            var outcome: String
        }

        static func entries(_ path: String) throws -> [Entry] {
            let text = try String(contentsOfFile: path, encoding: .utf8)
            return try text.split(separator: "\n").map { try JSONDecoder().decode(Entry.self, from: Data($0.utf8)) }
        }

        @Test func pushesDeletesAndRefusalsAreRecordedWithWhoAndFromWhere() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let users = cluster.root + "/htpasswd"
            var lines: [String] = []
            for user in ["alice", "reader"] { lines.append(try await RegistryAuthTests().htpasswdLine(user: user, password: "\(user)-pass")) }
            try (lines.joined(separator: "\n") + "\n").write(toFile: users, atomically: true, encoding: .utf8)
            try "alice ** pull,push,delete\nreader team/* pull\n".write(toFile: cluster.root + "/access", atomically: true, encoding: .utf8)
            let audit = cluster.root + "/audit.log"
            let registry = try await cluster.startRegistry(imageserverArguments: [
                "--htpasswd", users, "--access", cluster.root + "/access", "--audit-log", audit, "--trusted-proxy", "127.0.0.1",
            ])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let alice = RegistryAuthTests().basic("alice", "alice-pass")
            let reader = RegistryAuthTests().basic("reader", "reader-pass")
            let gc = GarbageCollectionTests()

            // alice pushes an image through a proxy that names her address.
            let config = Array("{\"audit\":1}".utf8)
            let blob = try await client.send(.POST, "/v2/team/app/blobs/uploads/?digest=\(Digest.of(config))", body: ByteBuffer(bytes: config), headers: [alice])
            #expect(blob.status == 201)
            let manifest = gc.manifest(config: config, layers: [])
            let pushed = try await client.send(
                .PUT, "/v2/team/app/manifests/v1", body: ByteBuffer(bytes: manifest),
                headers: [("Content-Type", GarbageCollectionTests.ociManifest), alice, ("X-Forwarded-For", "203.0.113.5")])
            #expect(pushed.status == 201)
            // reader may pull (not recorded) but not push; a wrong password; an anonymous probe (not recorded).
            #expect(try await client.send(.GET, "/v2/team/app/manifests/v1", headers: [reader, ("Accept", GarbageCollectionTests.ociManifest)]).status == 200)
            let denied = try await client.send(
                .PUT, "/v2/team/app/manifests/v2", body: ByteBuffer(bytes: manifest), headers: [("Content-Type", GarbageCollectionTests.ociManifest), reader])
            #expect(denied.status == 403)
            let wrong = try await client.send(.GET, "/v2/", headers: [RegistryAuthTests().basic("alice", "not-her-s3cret")])
            #expect(wrong.status == 401)
            #expect(try await client.send(.GET, "/v2/").status == 401)
            // alice deletes the manifest by digest.
            let deleted = try await client.send(.DELETE, "/v2/team/app/manifests/\(Digest.of(manifest))", headers: [alice])
            #expect(deleted.status == 202)

            let entries = try Self.entries(audit)
            #expect(entries.map(\.event) == ["push", "denied", "login_failed", "delete"], "\(entries)")
            guard entries.count == 4 else { return }
            let push = entries[0]
            #expect(push.user == "alice" && push.client == "203.0.113.5" && push.proxy == "127.0.0.1")
            #expect(push.repository == "team/app" && push.reference == "v1" && push.digest == Digest.of(manifest).description)
            #expect(push.status == 201 && push.outcome == "success" && push.method == "PUT")
            #expect(entries[1].user == "reader" && entries[1].status == 403 && entries[1].outcome == "failure" && entries[1].reference == "v2")
            #expect(entries[1].client == "127.0.0.1" && entries[1].proxy == nil, "without a forwarding header the peer is the client")
            #expect(entries[2].user == "alice" && entries[2].status == 401 && entries[2].path == "/v2/")
            #expect(entries[3].user == "alice" && entries[3].status == 202 && entries[3].reference == Digest.of(manifest).description)
            let text = try String(contentsOfFile: audit, encoding: .utf8)
            #expect(!text.contains("not-her-s3cret") && !text.contains("alice-pass"), "a password reached the audit log")
            #expect(try FileManager.default.attributesOfItem(atPath: audit)[.posixPermissions] as? Int == 0o600)

            // Rotated away and SIGHUP: the next line goes to a new file at the path.
            try FileManager.default.moveItem(atPath: audit, toPath: audit + ".1")
            let imageserver = try #require(ClusterHarness.pid(listeningOn: HostileClientTests.port(of: registry.hostPort)))
            kill(imageserver, SIGHUP)
            // Refused deletes until one lands in the new file: those answered before the reopen
            // went to the old one. (Waiting for the file alone raced its first line.)
            var after: [Entry] = []
            let reopened = await cluster.eventually(within: 10) {
                _ = try? await client.send(.DELETE, "/v2/team/app/manifests/v1", headers: [reader])
                after = (try? Self.entries(audit)) ?? []
                return !after.isEmpty
            }
            #expect(reopened, "no new audit log after SIGHUP")
            #expect(!after.isEmpty && after.allSatisfy { $0.event == "denied" }, "\(after)")
            let rotated = try Self.entries(audit + ".1")
            #expect(rotated.prefix(4).map(\.event) == ["push", "denied", "login_failed", "delete"], "\(rotated)")
            #expect(rotated.dropFirst(4).allSatisfy { $0.event == "denied" }, "only the refusals before the reopen follow")
        }
    }
}

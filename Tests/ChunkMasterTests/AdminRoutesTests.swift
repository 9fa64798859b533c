import ChunkMaster
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

/// The master's administration and lease routes in process (no port): the router `run` serves,
/// over a SQLite master, answering bad input and refused changes with their status and code.
@Suite("Master routes in process")
struct AdminRoutesTests {
    static let secret = ClusterSecret("admin-routes-test-secret-0123456789")!

    /// Runs `test` against the router of a fresh sole master.
    func withMaster(security: RoleSecurity = .insecure, _ test: @escaping @Sendable (any TestClientProtocol, ChunkMaster) async throws -> Void)
        async throws
    {
        let dir = try TemporaryDirectory("admin-routes")
        defer { dir.remove() }
        let configuration = ChunkMasterConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), dataDirectory: dir.path, security: security)
        let master = try await ChunkMaster(configuration: configuration, logger: Logger(label: "test"))
        try await Application(router: master.router()).test(.router) { client in try await test(client, master) }
    }

    func json(_ value: some Encodable) throws -> ByteBuffer { ByteBuffer(bytes: try WireJSON.encoder().encode(value)) }

    @Test func groupChangesAnswerTheirCodes() async throws {
        try await withMaster { client, master in
            let created = try await client.execute(uri: "/v1/groups", method: .post, body: try json(GroupCreation(id: 5)))
            #expect(created.status == .created)
            let cases: [(String, HTTPRequest.Method, ByteBuffer?, Int, InternalErrorCode)] = [
                ("/v1/groups", .post, try json(GroupCreation(id: 5)), 409, .groupExists),
                ("/v1/groups", .post, ByteBuffer(string: "{"), 400, .badRequest),
                ("/v1/groups", .post, ByteBuffer(string: #"{"id": -1}"#), 400, .badRequest),
                ("/v1/groups/five", .delete, nil, 400, .badRequest),
                ("/v1/groups/4294967296", .delete, nil, 400, .badRequest),
                ("/v1/groups/77", .delete, nil, 404, .groupUnknown),
            ]
            for (uri, method, body, status, code) in cases {
                let response = try await client.execute(uri: uri, method: method, body: body)
                #expect(response.status.code == status, "\(method) \(uri)")
                #expect(errorCode(response) == code.rawValue, "\(method) \(uri)")
            }
            #expect(master.snapshot().groups.map(\.id) == [5])
        }
    }

    @Test func serverChangesAnswerTheirCodes() async throws {
        try await withMaster { client, master in
            let registration = ServerRegistration(id: "cs1", group: 5, addr: "127.0.0.1:7001")
            #expect(try await client.execute(uri: "/v1/servers", method: .post, body: try json(registration)).status == .created)
            let cases: [(String, HTTPRequest.Method, ByteBuffer?, Int, InternalErrorCode)] = [
                ("/v1/servers", .post, try json(registration), 409, .serverExists),
                ("/v1/servers", .post, try json(ServerRegistration(id: "", group: 5, addr: "127.0.0.1:7002")), 400, .badRequest),
                ("/v1/servers", .post, try json(ServerRegistration(id: "cs2", group: 5, addr: "nowhere")), 400, .badRequest),
                ("/v1/servers", .post, try json(ServerRegistration(id: "cs2", group: 5, addr: "127.0.0.1:7002", zone: "rack 1")), 400, .badRequest),
                ("/v1/servers", .post, try json(ServerRegistration(id: "cs2", group: 5, addr: "127.0.0.1:7002")), 409, .zoneConflict),
                ("/v1/servers/ghost/status", .post, try json(StatusSetting(status: .readOnly)), 404, .serverUnknown),
                ("/v1/servers/cs1/status", .post, try json(StatusSetting(status: .down)), 400, .statusInvalid),
                ("/v1/servers/cs1/status", .post, ByteBuffer(string: #"{"status": "FAST"}"#), 400, .badRequest),
                ("/v1/servers/ghost", .delete, nil, 404, .serverUnknown),
            ]
            for (uri, method, body, status, code) in cases {
                let response = try await client.execute(uri: uri, method: method, body: body)
                #expect(response.status.code == status, "\(method) \(uri)")
                #expect(errorCode(response) == code.rawValue, "\(method) \(uri)")
            }
            // A removed server stays removed: it can neither be set nor registered again.
            #expect(try await client.execute(uri: "/v1/servers/cs1", method: .delete).status == .ok)
            let setRetired = try await client.execute(uri: "/v1/servers/cs1/status", method: .post, body: try json(StatusSetting(status: .readWrite)))
            #expect(setRetired.status == .conflict)
            #expect(errorCode(setRetired) == InternalErrorCode.serverRetired.rawValue)
            let again = try await client.execute(uri: "/v1/servers", method: .post, body: try json(registration))
            #expect(errorCode(again) == InternalErrorCode.serverRetired.rawValue)
            #expect(!master.snapshot().groups.flatMap(\.members).contains { $0.id == "cs1" })
        }
    }

    @Test func heartbeatsAndLeasesCheckTheirInput() async throws {
        try await withMaster { client, _ in
            let nameless = HeartbeatReport.initializing(serverId: "", group: 1, addr: "127.0.0.1:7001")
            let noAddress = HeartbeatReport.initializing(serverId: "cs1", group: 1, addr: "nowhere")
            var badZone = HeartbeatReport.initializing(serverId: "cs1", group: 1, addr: "127.0.0.1:7001")
            badZone.zone = String(repeating: "z", count: 64)
            for body in [try json(nameless), try json(noAddress), try json(badZone), ByteBuffer(string: "[]")] {
                let response = try await client.execute(uri: "/v1/heartbeat", method: .post, body: body)
                #expect(response.status == .badRequest)
                #expect(errorCode(response) == InternalErrorCode.badRequest.rawValue)
            }
            for uri in ["/v1/fileids?count=0", "/v1/fileids?count=ten", "/v1/fileids?count=\(UInt64.max)"] {
                let response = try await client.execute(uri: uri, method: .post)
                #expect(response.status == .badRequest, "\(uri)")
                #expect(errorCode(response) == InternalErrorCode.badRequest.rawValue, "\(uri)")
            }
            let lease = try await client.execute(uri: "/v1/fileids?count=10", method: .post)
            #expect(lease.status == .ok)
            #expect(try WireJSON.decoder().decode(FileIdLease.self, from: Data(lease.body.readableBytesView)).count == 10)
        }
    }

    @Test func theClusterSecretGuardsAdministration() async throws {
        try await withMaster(security: RoleSecurity(secret: Self.secret)) { client, master in
            let refused = try await client.execute(uri: "/v1/groups", method: .post, body: try json(GroupCreation(id: 3)))
            #expect(refused.status == .unauthorized)
            #expect(errorCode(refused) == InternalErrorCode.unauthorized.rawValue)
            #expect(refused.headers[.wwwAuthenticate] != nil)
            #expect(master.snapshot().groups.isEmpty)
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            let allowed = try await client.execute(
                uri: "/v1/groups", method: .post, headers: [.authorization: Self.secret.authorization], body: try json(GroupCreation(id: 3)))
            #expect(allowed.status == .created)
            #expect(master.snapshot().groups.map(\.id) == [3])
        }
    }
}

/// The `code` of an internal API's JSON error body, nil when the body is not one.
func errorCode(_ response: TestResponse) -> String? {
    try? WireJSON.decoder().decode(ErrorBody.self, from: Data(response.body.readableBytesView)).code
}

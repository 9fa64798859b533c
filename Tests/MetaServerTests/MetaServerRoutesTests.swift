import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MetaServer
import NIOCore
import ServerSupport
import SpeedyCore
import SpeedyTestSupport
import Testing

/// The metaserver's routes in process (no port): `MetaServer.router` over a SQLite store,
/// answering malformed arguments and unknown records with their status, code and detail.
@Suite("Metaserver routes in process")
struct MetaServerRoutesTests {
    static let secret = ClusterSecret("meta-routes-test-secret-0123456789")!

    /// Runs `test` against the router over a fresh SQLite store.
    func withMetaserver(security: RoleSecurity = .insecure, _ test: @escaping @Sendable (any TestClientProtocol) async throws -> Void)
        async throws
    {
        let dir = try TemporaryDirectory("meta-routes")
        defer { dir.remove() }
        let store = try SQLiteMetadataStore(path: dir.path + "/meta.sqlite")
        try await Application(router: MetaServer.router(store: store, security: security)).test(.router, test)
    }

    @Test func collectionRoutesRefuseMalformedArguments() async throws {
        try await withMetaserver { client in
            let cases: [(String, HTTPRequest.Method, ByteBuffer?)] = [
                ("/v1/gc/sweep", .post, nil),
                ("/v1/gc/sweep?graceMs=soon", .post, nil),
                ("/v1/gc/sweep?graceMs=0&limit=many", .post, nil),
                ("/v1/gc/chunks?limit=x", .get, nil),
                ("/v1/gc/chunks/forget", .post, ByteBuffer(string: "not json")),
                ("/v1/gc/chunks/forget", .post, ByteBuffer(string: #"[{"group": "one"}]"#)),
                ("/v1/chunk-groups/abc", .get, nil),
                ("/v1/chunk-groups/4294967296", .get, nil),
                ("/v1/chunk-groups/1?after=-1", .get, nil),
            ]
            for (uri, method, body) in cases {
                let response = try await client.execute(uri: uri, method: method, body: body)
                #expect(response.status == .badRequest, "\(method) \(uri)")
                #expect(errorBody(response)?.code == InternalErrorCode.badRequest.rawValue, "\(method) \(uri)")
            }
            // Well-formed, on an empty store: nothing to sweep, no group referenced.
            let sweep = try await client.execute(uri: "/v1/gc/sweep?graceMs=0&dryRun=true", method: .post)
            #expect(sweep.status == .ok)
            #expect(try WireJSON.decoder().decode(MetadataSweep.self, from: Data(sweep.body.readableBytesView)).count == 0)
            let groups = try await client.execute(uri: "/v1/chunk-groups", method: .get)
            #expect(try WireJSON.decoder().decode(ReferencedGroups.self, from: Data(groups.body.readableBytesView)).groups == [])
        }
    }

    @Test func recordRoutesAnswerUnknownAndInvalidWithCodeAndDetail() async throws {
        try await withMetaserver { client in
            let digest = "sha256:" + String(repeating: "ab", count: 32)
            // A lookup of what is not there is an answer (null), not an error.
            let lookup = try await client.execute(uri: "/v1/blobs/\(digest)", method: .get)
            #expect(lookup.status == .ok)
            #expect(String(buffer: lookup.body) == "null")
            let mount = try await client.execute(uri: "/v1/blobs/\(digest)/mount?repo=team/app", method: .post)
            #expect(mount.status == .notFound)
            #expect(errorBody(mount)?.code == InternalErrorCode.blobUnknown.rawValue)
            #expect(errorBody(mount)?.detail == digest)
            let append = UploadAppendRequest(expectedOffset: 0, chunks: [], newOffset: 0, hashState: [])
            let upload = try await client.execute(
                uri: "/v1/uploads/no-such-session/append", method: .post, body: ByteBuffer(bytes: try WireJSON.encoder().encode(append)))
            #expect(upload.status == .notFound)
            #expect(errorBody(upload)?.code == InternalErrorCode.uploadUnknown.rawValue)
            #expect(errorBody(upload)?.detail == "no-such-session")

            for (uri, method) in [
                ("/v1/blobs/not-a-digest", HTTPRequest.Method.get), ("/v1/blobs/\(digest)", .delete),
                ("/v1/blobs/\(digest)?repo=Not%20A%20Name", .delete), ("/v1/blobs?limit=lots", .get),
            ] {
                let response = try await client.execute(uri: uri, method: method)
                #expect(response.status == .badRequest, "\(method) \(uri)")
                #expect(errorBody(response)?.code == InternalErrorCode.badRequest.rawValue, "\(method) \(uri)")
            }
        }
    }

    @Test func chunkUsersRefusesAGroupOrFileIdThatIsNotAWholeNumberInRange() async throws {
        try await withMetaserver { client in
            for uri in [
                "/v1/chunks/abc/1/users", "/v1/chunks/4294967296/1/users", "/v1/chunks/-1/1/users", "/v1/chunks/+1/1/users",
                "/v1/chunks/1/x/users", "/v1/chunks/1/18446744073709551616/users", "/v1/chunks/1/%201/users",
                // Fits a UInt64, but no store keeps a file id above Int64.max.
                "/v1/chunks/1/9223372036854775808/users",
            ] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .badRequest, "\(uri)")
                #expect(errorBody(response)?.code == InternalErrorCode.badRequest.rawValue, "\(uri)")
            }
            // Well-formed, on an empty store: nothing uses the chunk.
            let unknown = try await client.execute(uri: "/v1/chunks/4294967295/9223372036854775807/users", method: .get)
            #expect(unknown.status == .ok)
            #expect(try WireJSON.decoder().decode(ChunkUsers.self, from: Data(unknown.body.readableBytesView)) == .unused)
        }
    }

    @Test func theClusterSecretGuardsEveryRouteButTheProbes() async throws {
        try await withMetaserver(security: RoleSecurity(secret: Self.secret)) { client in
            for uri in ["/v1/blobs", "/v1/chunk-groups", "/metrics"] {
                let response = try await client.execute(uri: uri, method: .get)
                #expect(response.status == .unauthorized, "\(uri)")
                #expect(errorBody(response)?.code == InternalErrorCode.unauthorized.rawValue, "\(uri)")
            }
            #expect(try await client.execute(uri: "/v1/health", method: .get).status == .ok)
            #expect(try await client.execute(uri: "/readyz", method: .get).status == .ok)
            let allowed = try await client.execute(uri: "/v1/chunk-groups", method: .get, headers: [.authorization: Self.secret.authorization])
            #expect(allowed.status == .ok)
        }
    }
}

/// An internal API's JSON error body, nil when the body is not one.
func errorBody(_ response: TestResponse) -> ErrorBody? {
    try? WireJSON.decoder().decode(ErrorBody.self, from: Data(response.body.readableBytesView))
}

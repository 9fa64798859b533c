import Foundation
import HTTPTypes
import Hummingbird
@testable import ImageServer
import NIOCore
import ServerSupport
import SpeedyTestSupport
import Testing

/// What the audit log keeps, and what it never does.
@Suite("Audit log entries")
struct AuditMiddlewareTests {
    static func request(_ method: HTTPRequest.Method, _ path: String, authorization: String? = nil) -> Request {
        var head = HTTPRequest(method: method, scheme: "http", authority: "x", path: path)
        if let authorization { head.headerFields[.authorization] = authorization }
        return Request(head: head, body: .init(buffer: ByteBuffer()))
    }

    @Test func eachRequestIsRecordedAsWhatItWasOrNotAtAll() {
        let basic = "Basic " + Data("alice:pw".utf8).base64EncodedString()
        #expect(AuditMiddleware.event(Self.request(.put, "/v2/a/manifests/v1"), status: 201) == "push")
        #expect(AuditMiddleware.event(Self.request(.put, "/v2/a/manifests/v1"), status: 500) == "push")
        #expect(AuditMiddleware.event(Self.request(.delete, "/v2/a/blobs/sha256:00"), status: 202) == "delete")
        #expect(AuditMiddleware.event(Self.request(.put, "/v2/a/manifests/v1", authorization: basic), status: 401) == "login_failed")
        #expect(AuditMiddleware.event(Self.request(.get, "/v2/a/manifests/v1"), status: 403) == "denied")
        #expect(AuditMiddleware.event(Self.request(.get, "/v2/"), status: 401) == nil, "an anonymous probe is no failed login")
        #expect(AuditMiddleware.event(Self.request(.get, "/v2/a/manifests/v1"), status: 200) == nil, "pulls are not audited")
        #expect(AuditMiddleware.event(Self.request(.patch, "/v2/a/blobs/uploads/x"), status: 202) == nil)
    }

    @Test func aClaimedUserIsTakenWithoutItsPasswordFromAnyHeader() {
        let basic = { (text: String) in "Basic " + Data(text.utf8).base64EncodedString() }
        #expect(AuditMiddleware.claimedUser(Self.request(.get, "/v2/", authorization: basic("alice:pw:with:colons"))) == "alice")
        #expect(AuditMiddleware.claimedUser(Self.request(.get, "/v2/", authorization: basic("nocolon"))) == nil)
        #expect(AuditMiddleware.claimedUser(Self.request(.get, "/v2/", authorization: "Bearer abc")) == nil)
        #expect(AuditMiddleware.claimedUser(Self.request(.get, "/v2/", authorization: basic(String(repeating: "u", count: 500) + ":p")))?.count == 128)
        let seeds = [basic("alice:secret"), "Basic !!!", "Basic ", basic(":"), basic("a:" + String(repeating: "x", count: 100))]
        for input in RequestParserFuzzTests.inputs(seeds, seed: 41) {
            guard let user = AuditMiddleware.claimedUser(Self.request(.get, "/v2/", authorization: input)) else { continue }
            #expect(user.count <= 128 && !user.contains(":"), "\(input)")
        }
    }

    @Test func linesAreJSONAppendedAndAPathMovedAwayIsReopened() throws {
        let directory = try TemporaryDirectory("audit")
        let path = directory.path + "/audit.log"
        let log = try AuditLog(path: path)
        let entry = AuditLog.Entry(
            event: "push", user: "alice", client: "192.0.2.1", proxy: nil, method: "PUT", path: "/v2/a/manifests/v1", repository: "a",
            reference: "v1", digest: "sha256:00", status: 201)
        #expect(entry.time.hasSuffix("Z") && entry.time.count == 24, "\(entry.time)")
        log.record(entry)
        log.record(entry)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        #expect(try JSONDecoder().decode(AuditLog.Entry.self, from: Data(lines[0].utf8)) == entry)
        try FileManager.default.moveItem(atPath: path, toPath: path + ".1")
        try log.reopen()
        log.record(entry)
        #expect(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").count == 1)
        #expect(throws: AuditLog.OpenError.self) { try AuditLog(path: directory.path + "/missing/dir/audit.log") }
    }
}

import Foundation
import HTTPTypes
import ServerSupport
import SpeedyCore
import SpeedyTestSupport
import Testing

/// The secret file during a rotation: one secret, then the old and the new, then the new alone,
/// each re-read by ``ClusterSecretRing/reload()`` as SIGHUP does.
@Suite("Cluster secret rotation")
struct ClusterSecretRingTests {
    let old = ClusterSecret("old-secret-of-this-test-0001")!
    let new = ClusterSecret("new-secret-of-this-test-0002")!

    @Test func theFileHoldsOneSecretPerLineAndAtMostFour() throws {
        let directory = try TemporaryDirectory("secrets")
        defer { directory.remove() }
        let path = directory.path + "/secret"
        try "  \(old.value)\n\n\(new.value)\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try ClusterSecret.loadAll(path: path) == [old, new])
        #expect(try ClusterSecret.load(path: path) == old, "a tool sends the first")
        try String(repeating: "\(old.value)\n", count: 5).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ClusterSecret.LoadError.self) { try ClusterSecret.loadAll(path: path) }
        try "\n \n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ClusterSecret.LoadError.self) { try ClusterSecret.loadAll(path: path) }
        try "\(old.value)\nshort\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ClusterSecret.LoadError.self) { try ClusterSecret.loadAll(path: path) }
    }

    @Test func aRingAcceptsEveryLineSendsTheFirstAndKeepsItsSecretsWhenTheFileIsBad() throws {
        let directory = try TemporaryDirectory("secrets")
        defer { directory.remove() }
        let path = directory.path + "/secret"
        try "\(old.value)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let ring = try ClusterSecretRing(path: path)
        #expect(ring.isCarried(by: old.authorization) && !ring.isCarried(by: new.authorization))

        try "\(new.value)\n\(old.value)\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try ring.reload() == 2)
        #expect(ring.current == new)
        #expect(ring.isCarried(by: old.authorization) && ring.isCarried(by: new.authorization))
        #expect(!ring.isCarried(by: nil) && !ring.isCarried(by: "Bearer " + old.value + "x"))

        try "".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ClusterSecret.LoadError.self) { try ring.reload() }
        #expect(ring.accepted == [new, old], "a file that cannot be used changes nothing")

        try "\(new.value)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try ring.reload()
        #expect(!ring.isCarried(by: old.authorization) && ring.isCarried(by: new.authorization))
        #expect("\(ring)".contains("redacted") && !"\(ring)".contains(new.value))
    }

    /// Chunk tickets are signed under the secret: during the window a ticket of either key opens
    /// its chunk; after it, only the new key's.
    @Test func chunkTicketsOfBothSecretsPassDuringTheWindow() throws {
        let directory = try TemporaryDirectory("secrets")
        defer { directory.remove() }
        let path = directory.path + "/secret"
        try "\(new.value)\n\(old.value)\n".write(toFile: path, atomically: true, encoding: .utf8)
        let ring = try ClusterSecretRing(path: path)
        let gate = ChunkTicketGate(secrets: ring)
        let chunk = ChunkKey(group: 1, fileId: 7)
        let now = currentTimeMillis()
        let byOld = ChunkTicketKey(secret: old).ticket(for: chunk, expiresMs: now + 60_000)
        let byNew = ChunkTicketKey(secret: new).ticket(for: chunk, expiresMs: now + 60_000)
        let expired = ChunkTicketKey(secret: old).ticket(for: chunk, expiresMs: now - 1)
        for ticket in [byOld, byNew] {
            #expect(throws: Never.self) { try gate.admit(ticket, method: .get, routed: "/v1/chunks/1/7", nowMs: now) }
        }
        #expect(throws: ChunkTicketGate.Refusal.unauthorized(.expired)) {
            try gate.admit(expired, method: .get, routed: "/v1/chunks/1/7", nowMs: now)
        }
        try "\(new.value)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try ring.reload()
        #expect(throws: ChunkTicketGate.Refusal.unauthorized(.badSignature)) {
            try gate.admit(byOld, method: .get, routed: "/v1/chunks/1/7", nowMs: now)
        }
        #expect(throws: Never.self) { try gate.admit(byNew, method: .get, routed: "/v1/chunks/1/7", nowMs: now) }
    }
}

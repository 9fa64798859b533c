import Foundation
import HTTPTypes
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

/// The role table (issue 25, part 1): each role is known by the credential it sends each kind of
/// port, never by its secret; a table reads back what it wrote, and a table with one bad line is
/// refused whole, saying which line.
@Suite("Role table")
struct RoleTableTests {
    static let secrets: [ClusterRole: ClusterSecret] = Dictionary(uniqueKeysWithValues: ClusterRole.allCases.map { ($0, ClusterSecret.generate()) })

    /// What `speedy credentials` writes for ``secrets``.
    static func table(operatorSecretEverywhere: Bool = false) -> RoleTable {
        var files = RoleCredentialFiles(directory: "/nonexistent")
        files.operatorSecretEverywhere = operatorSecretEverywhere
        return RoleTable(entries: ClusterRole.allCases.flatMap { files.entries($0, secrets[$0]!) })
    }

    static var table: RoleTable { table() }

    func refusal(_ text: String) -> RoleTable.ParseError? {
        do {
            _ = try RoleTable.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func eachRoleIsKnownAtThePortsItCallsAndNowhereElse() throws {
        let table = Self.table
        #expect(try RoleTable.parse(table.text) == table)
        #expect(table.ticketKeys == [ChunkTicketKey.publicKey(signingWith: Self.secrets[.imageserver]!)])
        for (role, secret) in Self.secrets {
            // The secret itself is nowhere in the table, and opens no port.
            #expect(!table.text.contains(secret.value))
            for port in ClusterRole.servers {
                #expect(table.role(carriedBy: secret.authorization, at: port) == nil, "\(role)'s secret at \(port)")
                let calls = RouteAuthorization.of(port)!.admitsAnything(role)
                let found = table.role(carriedBy: ClusterCredential.authorization(secret, for: port), at: port)
                #expect(found == (calls ? role : nil), "\(role) at \(port)")
                // A credential made for one kind of port opens no other.
                for other in ClusterRole.servers where other != port {
                    #expect(table.role(carriedBy: ClusterCredential.authorization(secret, for: port), at: other) == nil)
                }
            }
        }
        #expect(table.role(carriedBy: ClusterCredential.authorization(Self.secrets[.imageserver]!, for: .metaserver), at: .metaserver) == .imageserver)
        #expect(table.role(carriedBy: ClusterCredential.authorization(Self.secrets[.chunkserver]!, for: .metaserver), at: .metaserver) == nil)
        let credential = ClusterCredential.token(Self.secrets[.chunkserver]!, for: .chunkserver)
        #expect(table.role(carriedBy: nil, at: .chunkserver) == nil)
        #expect(table.role(carriedBy: credential, at: .chunkserver) == nil)
        #expect(table.role(carriedBy: "Basic " + credential, at: .chunkserver) == nil)
        #expect(table.role(carriedBy: "Bearer " + credential + "0", at: .chunkserver) == nil)
        #expect(table.role(carriedBy: "Bearer " + credential.dropLast(), at: .chunkserver) == nil)
        #expect(table.role(carriedBy: "Bearer " + credential, at: .chunkserver) == .chunkserver)
    }

    @Test func theOperatorsSecretOpensEveryPortOnlyWhenTheTableSaysSo() throws {
        let table = Self.table(operatorSecretEverywhere: true)
        #expect(try RoleTable.parse(table.text) == table)
        #expect(table.text.contains("operator      *"))
        for port in ClusterRole.servers {
            #expect(table.role(carriedBy: Self.secrets[.operator]!.authorization, at: port) == .operator)
            #expect(table.role(carriedBy: Self.secrets[.imageserver]!.authorization, at: port) == nil)
        }
    }

    @Test func commentsBlankLinesAndLineEndsAreIgnored() throws {
        let hash = RoleTable.hash(Array("a credential".utf8)).hexString
        let read = try RoleTable.parse("# a comment\n\n   \r\n\tmetaserver \tchunkmaster  \(hash)\r\n  # another\n")
        #expect(read.entries == [RoleTable.Entry(role: .metaserver, audience: .chunkmaster, secretHash: RoleTable.hash(Array("a credential".utf8)))])
    }

    @Test func aTableWithOneBadLineIsRefusedSayingWhich() {
        let hash = String(repeating: "ab", count: 32)
        let key = "ed25519:" + String(repeating: "A", count: 43)
        #expect(refusal("") == .empty)
        #expect(refusal("# nothing but comments\n\n") == .empty)
        let cases: [(String, Int)] = [
            ("chunkmaster metaserver \(hash)\nwizard metaserver \(hash.dropLast(2))cd", 2),
            ("chunkmaster metaserver \(hash.dropLast())", 1),
            ("chunkmaster metaserver \(hash.uppercased())", 1),
            ("chunkmaster metaserver \(hash)zz", 1),
            ("chunkmaster \(hash)", 1),
            ("chunkmaster monitor \(hash)", 1),
            ("chunkmaster operator \(hash)", 1),
            ("chunkmaster ** \(hash)", 1),
            ("chunkmaster metaserver \(hash) \(key)", 1),
            ("imageserver chunkserver \(hash) ed25519:short", 1),
            ("imageserver chunkserver \(hash) rsa:" + String(repeating: "A", count: 43), 1),
            ("imageserver chunkserver \(hash) \(key) extra", 1),
            ("chunkmaster metaserver \(hash)\nmetaserver chunkmaster \(hash)", 2),
            ("\n\n# " + String(repeating: "x", count: 300), 3),
            // Only LF ends a line: a form feed or U+2028 is inside one.
            ("chunkmaster metaserver \(hash)\u{0C}metaserver chunkmaster \(hash.dropLast(2))cd", 1),
        ]
        for (text, line) in cases {
            guard case .line(let number, _) = refusal(text) else {
                Issue.record("accepted: \(text)")
                continue
            }
            #expect(number == line, "\(text)")
        }
        let many = (0...RoleTable.maximumEntries).map { "operator * " + RoleTable.hash(Array("secret-\($0)".utf8)).hexString }
        #expect(refusal(many.joined(separator: "\n")) == .tooMany)
    }

    @Test func aTableFileIsReReadAndOneThatCannotBeUsedKeepsTheTableHeld() throws {
        let dir = try TemporaryDirectory("role-table")
        defer { dir.remove() }
        let path = dir.path + "/roles"
        try Self.table.text.write(toFile: path, atomically: true, encoding: .utf8)
        let tracker = Self.secrets[.tracker]!
        let atMaster = ClusterCredential.authorization(tracker, for: .chunkmaster)
        // The process runs as long as the table lists the tracker's credential.
        let file = try RoleTableFile(path: path, sending: { tracker }) { table, secret in
            table.role(carriedBy: ClusterCredential.authorization(secret, for: .chunkmaster), at: .chunkmaster) == .tracker ? nil : "no tracker"
        }
        #expect(file.refusal(sending: tracker) == nil)
        #expect(file.refusal(sending: ClusterSecret.generate()) == "no tracker")
        #expect(file.role(carriedBy: atMaster, at: .chunkmaster) == .tracker)
        let monitor = RoleTable(entries: RoleCredentialFiles(directory: "/nonexistent").entries(.monitor, ClusterSecret.generate()))
        try (Self.table.text + monitor.text).write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try file.reload() == Self.table.entries.count + monitor.entries.count)
        // Unreadable, malformed, or without this process's own credential: the table held stays.
        for text in ["tracker nothex\n", monitor.text] {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect(throws: RoleTableFile.LoadError.self) { try file.reload() }
            #expect(file.role(carriedBy: atMaster, at: .chunkmaster) == .tracker)
        }
        try FileManager.default.removeItem(atPath: path)
        #expect(throws: RoleTableFile.LoadError.self) { try file.reload() }
        #expect(throws: RoleTableFile.LoadError.self) { try RoleTableFile(path: "/dev/zero") }
        #expect(file.table.entries.count == Self.table.entries.count + monitor.entries.count)
    }

    @Test func aSecretFileWhoseNewFirstSecretTheTableDoesNotListIsNotTaken() throws {
        let dir = try TemporaryDirectory("role-secret")
        defer { dir.remove() }
        let path = dir.path + "/tracker.secret"
        let (old, new) = (ClusterSecret.generate(), ClusterSecret.generate())
        try SecretFile.write(old.value + "\n", to: path)
        let ring = try ClusterSecretRing(path: path)
        let table = RoleTableFile(RoleTable(entries: RoleCredentialFiles(directory: "/nonexistent").entries(.tracker, old)))
        // The new secret first, but the table not remade: the role would be locked out.
        try SecretFile.write(new.value + "\n" + old.value + "\n", to: path)
        let refusal = { (secret: ClusterSecret) in
            table.table.role(carriedBy: ClusterCredential.authorization(secret, for: .chunkmaster), at: .chunkmaster) == nil ? "not listed" : nil
        }
        #expect(throws: ClusterSecret.LoadError.self) { try ring.reload(validate: refusal) }
        #expect(ring.current == old)
        // The new one second (rotation step 1): taken.
        try SecretFile.write(old.value + "\n" + new.value + "\n", to: path)
        #expect(try ring.reload(validate: refusal) == 2)
        #expect(ring.current == old)
        // The table made with 0644 whatever the umask.
        let previous = umask(0o077)
        defer { umask(previous) }
        try SecretFile.write("x\n", to: dir.path + "/roles", mode: 0o644)
        #expect(try FileManager.default.attributesOfItem(atPath: dir.path + "/roles")[.posixPermissions] as? Int == 0o644)
    }

    // MARK: chunk tickets signed by an imageserver (v2)

    static let chunk = ChunkKey(group: 7, fileId: 42)
    static let now: Int64 = 1_800_000_000_000

    @Test func anImageserversTicketChecksWithItsPublicKeyWhichCannotSign() throws {
        let secret = Self.secrets[.imageserver]!
        let signer = ChunkTicketKey.signer(for: secret)
        let verifier = try #require(ChunkTicketKey(verifying: ChunkTicketKey.publicKey(signingWith: secret)))
        #expect(signer.canSign && !verifier.canSign)
        let ticket = signer.ticket(for: Self.chunk, expiresMs: Self.now + 60_000)
        #expect(ticket.hasPrefix("v2.7.42."))
        #expect(ChunkTicketKey(signingWith: secret).ticket(for: Self.chunk, expiresMs: Self.now + 60_000) == ticket)
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
        let gate = ChunkTicketGate(roles: RoleTableFile(Self.table))
        let now = currentTimeMillis()
        let good = ChunkTicketKey.signer(for: Self.secrets[.imageserver]!).ticket(for: Self.chunk, expiresMs: now + 60_000)
        try gate.admit(good, method: .get, routed: "/v1/chunks/7/42", nowMs: now)
        try gate.admit(good, method: .head, routed: "/v1/chunks/7/42", nowMs: now)
        #expect(throws: ChunkTicketGate.Refusal.forbidden(ChunkTicketError.otherChunk.description)) {
            try gate.admit(good, method: .get, routed: "/v1/chunks/7/41", nowMs: now)
        }
        // Whoever is not a listed imageserver signs nothing the gate takes.
        let byChunkserver = ChunkTicketKey.signer(for: Self.secrets[.chunkserver]!).ticket(for: Self.chunk, expiresMs: now + 60_000)
        #expect(throws: ChunkTicketGate.Refusal.unauthorized(.badSignature)) {
            try gate.admit(byChunkserver, method: .get, routed: "/v1/chunks/7/42", nowMs: now)
        }
        let v1 = ChunkTicketKey(secret: Self.secrets[.operator]!).ticket(for: Self.chunk, expiresMs: now + 60_000)
        #expect(throws: ChunkTicketGate.Refusal.unauthorized(.badSignature)) { try gate.admit(v1, method: .get, routed: "/v1/chunks/7/42", nowMs: now) }
    }
}

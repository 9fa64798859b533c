import ServerSupport
import SpeedyCore
import SpeedyTestSupport
import Testing

/// Chunk tickets (issue 23): what the imageserver signs and chunkservers check. A ticket is good
/// for its own chunk until it expires, under the key of the secret it was signed with; any change
/// to it, or any other text, is refused, and nothing makes the check trap.
@Suite("Chunk tickets")
struct ChunkTicketKeyTests {
    static let key = ChunkTicketKey(secret: ClusterSecret("chunk-ticket-test-secret-0123456789")!)
    static let chunk = ChunkKey(group: 3, fileId: 1_234_567)
    static let now: Int64 = 1_800_000_000_000
    static let expires = now + 600_000

    func refusal(_ ticket: String, for chunk: ChunkKey = chunk, now: Int64 = now) -> ChunkTicketError? {
        do {
            try Self.key.check(ticket, for: chunk, nowMs: now)
            return nil
        } catch {
            return error
        }
    }

    @Test func aTicketReadsItsChunkUntilItExpires() throws {
        let ticket = Self.key.ticket(for: Self.chunk, expiresMs: Self.expires)
        #expect(ticket.hasPrefix("v1.3.1234567.\(Self.expires)."))
        #expect(ticket.utf8.count <= ChunkTicketKey.maxTicketBytes)
        #expect(!ticket.contains("=") && !ticket.contains("+") && !ticket.contains("/"))
        #expect(refusal(ticket) == nil)
        #expect(refusal(ticket, now: Self.expires - 1) == nil)
        #expect(try Self.key.verify(ticket, nowMs: Self.now) == Self.chunk)
        #expect(refusal(ticket, now: Self.expires) == .expired)
        #expect(refusal(ticket, now: .max) == .expired)
        #expect(refusal(ticket, for: ChunkKey(group: 3, fileId: 1_234_568)) == .otherChunk)
        #expect(refusal(ticket, for: ChunkKey(group: 4, fileId: 1_234_567)) == .otherChunk)
        // The largest numbers there are make a ticket that still fits and checks.
        let largest = ChunkKey(group: .max, fileId: .max)
        let big = Self.key.ticket(for: largest, expiresMs: .max)
        #expect(big.utf8.count <= ChunkTicketKey.maxTicketBytes)
        #expect(refusal(big, for: largest) == nil)
    }

    @Test func anotherSecretsKeyRefusesTheTicket() {
        let ticket = Self.key.ticket(for: Self.chunk, expiresMs: Self.expires)
        let rotated = ChunkTicketKey(secret: ClusterSecret("chunk-ticket-test-secret-0123456780")!)
        #expect(throws: ChunkTicketError.badSignature) { try rotated.check(ticket, for: Self.chunk, nowMs: Self.now) }
    }

    @Test func everyFieldAlteredIsRefused() {
        let ticket = Self.key.ticket(for: Self.chunk, expiresMs: Self.expires)
        let parts = ticket.split(separator: ".").map(String.init)
        func with(_ index: Int, _ value: String) -> String {
            var altered = parts
            altered[index] = value
            return altered.joined(separator: ".")
        }
        // A field changed to another valid value: the signature no longer checks.
        #expect(refusal(with(1, "4"), for: ChunkKey(group: 4, fileId: Self.chunk.fileId)) == .badSignature)
        #expect(refusal(with(2, "1234568"), for: ChunkKey(group: 3, fileId: 1_234_568)) == .badSignature)
        #expect(refusal(with(3, String(Self.expires + 1))) == .badSignature)
        #expect(refusal(with(3, String(Int64.max))) == .badSignature)
        var mac = Array(parts[4])
        mac[5] = mac[5] == "A" ? "B" : "A"
        #expect(refusal(with(4, String(mac))) == .badSignature)
        // A field spelled another way for the same number, or another version: not a ticket.
        for altered in [
            with(0, "v2"), with(0, "V1"), with(1, "03"), with(1, "+3"), with(1, "-3"), with(1, " 3"), with(2, "01234567"),
            with(3, "-1"), with(3, "+\(Self.expires)"), with(4, parts[4] + "="), with(4, String(parts[4].dropLast())),
            with(4, parts[4] + "A"), with(4, parts[4].replacingFirst("-", "+")), ticket + ".", "." + ticket, ticket + " ",
        ] where altered != ticket {
            #expect(refusal(altered) == .malformed, "\(altered)")
        }
    }

    @Test func hugeEmptyAndForeignTextIsMalformed() {
        let mac = String(repeating: "A", count: 43)
        let cases = [
            "", ".", "....", "v1", "v1....", "v1.3.1234567.\(Self.expires)", "v1.3.1234567.\(Self.expires).",
            "v1.4294967296.1.1.\(mac)", "v1.99999999999999999999.1.1.\(mac)", "v1.1.18446744073709551616.1.\(mac)",
            "v1.1.1.9223372036854775808.\(mac)", "v1.1.1.99999999999999999999999.\(mac)",
            "v1.1.1.1.\(mac).x", "v1.１.1.1.\(mac)", "v1.1.1.1.\(String(repeating: "é", count: 43))", "v1.3.🙂.1.\(mac)",
            "v1.1.1.1." + String(repeating: "A", count: 300), String(repeating: "9", count: 100_000),
            "v1.\u{0}.1.1.\(mac)", "Bearer v1.1.1.1.\(mac)",
        ]
        for text in cases { #expect(refusal(text) == .malformed, "\(text.prefix(80))") }
    }

    @Test func randomTextIsNeverAcceptedAndNeverTraps() {
        var generator = SeededGenerator(seed: 23)
        let valid = Self.key.ticket(for: Self.chunk, expiresMs: Self.expires)
        let alphabet = Array("v1.0123456789-_ABCabcxyz+/=é🙂\u{0} ")
        for i in 0..<10_000 {
            let text: String
            if i % 2 == 0 {
                let length = Int.random(in: 0...220, using: &generator)
                text = String((0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            } else {
                // Mutations of a valid ticket: a few characters replaced, inserted or removed.
                var characters = Array(valid)
                for _ in 0...Int.random(in: 0...3, using: &generator) {
                    let at = Int.random(in: 0..<characters.count, using: &generator)
                    switch Int.random(in: 0...2, using: &generator) {
                    case 0: characters[at] = alphabet.randomElement(using: &generator)!
                    case 1: characters.insert(alphabet.randomElement(using: &generator)!, at: at)
                    default: characters.remove(at: at)
                    }
                }
                text = String(characters)
                if text == valid { continue }
            }
            #expect(refusal(text) != nil, "\(text)")
        }
    }
}


extension String {
    /// The text with its first `target` replaced (unchanged without one).
    func replacingFirst(_ target: Character, _ replacement: Character) -> String {
        guard let index = firstIndex(of: target) else { return self }
        var copy = self
        copy.replaceSubrange(index...index, with: String(replacement))
        return copy
    }
}

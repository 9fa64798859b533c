import Foundation
import NIOCore
import ServerSupport
import SpeedyCore
import Testing

/// The vocabulary agents and the tracker share: bitfields (strict on decode, since they come
/// from the network) and the peer signature every request carries.
@Suite("Tracker wire: bitfields and peer signatures")
struct TrackerWireTests {
    static let key = PeerKey(secret: ClusterSecret("tracker-wire-peer-secret-0123456789abcdef")!)

    @Test func aBitfieldRoundTripsThroughJSON() throws {
        for count in [0, 1, 7, 8, 9, 64, 1000] {
            var field = ChunkBitfield(count: count)
            for index in stride(from: 0, to: count, by: 3) { field.insert(index) }
            let decoded = try WireJSON.decoder().decode(ChunkBitfield.self, from: try WireJSON.encoder().encode(field))
            #expect(decoded == field)
            #expect(decoded.held == (count + 2) / 3)
            #expect((0..<count).allSatisfy { decoded.contains($0) == ($0 % 3 == 0) })
        }
        var one = ChunkBitfield(count: 9)
        one.insert(0)
        one.insert(8)
        #expect(one.base64 == "gIA=", "most significant bit of byte 0 first")
        #expect(ChunkBitfield.full(count: 5).isComplete)
        #expect(!one.contains(9) && !one.contains(-1))
    }

    @Test func aBitfieldDecodesStrictly() {
        let refused: [(Int, String)] = [
            (9, "gA=="),  // one byte for nine chunks
            (3, "/w=="),  // bits past the count set
            (8, "gA"),  // no padding
            (8, "gB=="),  // non-canonical: a padding bit set
            (8, "g A="),  // not base64
            (-1, ""),
            (ChunkBitfield.maxCount + 1, ""),
        ]
        for (count, text) in refused {
            #expect(ChunkBitfield(count: count, base64: text) == nil, "\(count) \(text)")
            let json = #"{"count":\#(count),"have":"\#(text)"}"#
            #expect(throws: DecodingError.self) { try WireJSON.decoder().decode(ChunkBitfield.self, from: Data(json.utf8)) }
        }
        #expect(ChunkBitfield(count: 0, base64: "") == ChunkBitfield(count: 0))
    }

    func sign(_ target: String = "/v1/peers/x?agent=a", body: String = "", agent: String = "a", nowMs: Int64 = 1_000_000) -> String {
        Self.key.authorization(method: "GET", target: target, bodyHash: PeerKey.bodyHash(ByteBuffer(string: body)), agent: agent, nowMs: nowMs)
    }

    func verify(_ header: String?, target: String = "/v1/peers/x?agent=a", body: String = "", method: String = "GET", nowMs: Int64 = 1_000_000) throws(PeerSignatureError) -> String {
        try Self.key.verify(header, method: method, target: target, bodyHash: PeerKey.bodyHash(ByteBuffer(string: body)), nowMs: nowMs)
    }

    @Test func aSignatureNamesItsAgentAndCoversMethodTargetBodyAndAgent() throws {
        #expect(try verify(sign()) == "a")
        #expect(try verify(sign(nowMs: 1_000_000 - PeerKey.allowedSkewMs)) == "a", "the skew allowed is inclusive")
        #expect(throws: PeerSignatureError.badSignature) { try verify(sign(), target: "/v1/peers/y?agent=a") }
        #expect(throws: PeerSignatureError.badSignature) { try verify(sign(), body: "x") }
        #expect(throws: PeerSignatureError.badSignature) { try verify(sign(), method: "POST") }
        let header = sign()
        let otherAgent = header.replacingOccurrences(of: "SpeedyPeer a.", with: "SpeedyPeer b.")
        #expect(throws: PeerSignatureError.badSignature) { try verify(otherAgent) }
        let otherTime = header.replacingOccurrences(of: ".1000000.", with: ".1000001.")
        #expect(throws: PeerSignatureError.badSignature) { try verify(otherTime) }
        let stranger = PeerKey(secret: ClusterSecret("another-swarm-secret-0123456789abcdefgh")!)
        let strangers = stranger.authorization(method: "GET", target: "/v1/peers/x?agent=a", agent: "a", nowMs: 1_000_000)
        #expect(throws: PeerSignatureError.badSignature) { try verify(strangers) }
    }

    @Test func aSignatureOutsideTheSkewIsStale() {
        #expect(throws: PeerSignatureError.stale) { try verify(sign(nowMs: 1_000_000 - PeerKey.allowedSkewMs - 1)) }
        #expect(throws: PeerSignatureError.stale) { try verify(sign(nowMs: 1_000_000 + PeerKey.allowedSkewMs + 1)) }
    }

    @Test func malformedHeadersAreMalformed() {
        let mac = String(sign().split(separator: ".").last!)
        let malformed: [String?] = [
            nil, "", "SpeedyPeer", "Bearer a.1000000.\(mac)", "speedypeer a.1000000.\(mac)", "SpeedyPeer a.1000000",
            "SpeedyPeer a.1000000.\(mac).x", "SpeedyPeer .1000000.\(mac)", "SpeedyPeer a_b.1000000.\(mac)",
            "SpeedyPeer a.-1000000.\(mac)", "SpeedyPeer a..\(mac)", "SpeedyPeer a.12345678901234567.\(mac)",
            "SpeedyPeer a.1000000.AAAA", "SpeedyPeer a.1000000.\(mac)=", "SpeedyPeer \(String(repeating: "a", count: 65)).1000000.\(mac)",
            "SpeedyPeer a.1000000.\(mac)" + String(repeating: " ", count: 200),
        ]
        for header in malformed {
            #expect(throws: PeerSignatureError.malformed, "\(header ?? "nil")") { try verify(header) }
        }
    }
}

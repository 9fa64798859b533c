import HTTPTypes
import ServerSupport
import SpeedyCore
import Testing

@testable import PeerAgent

/// The agent's peer port on hostile input (issue 23): every malformed chunk request gets a
/// `400 BAD_REQUEST` body saying what is wrong, never a crash or a 200. The route itself, on a
/// running agent, is ClusterTests' PeerHostileTests.
@Suite("Node agent: peer serve routes")
struct PeerServeRoutesTests {
    static let digest = "sha256:" + String(repeating: "ab", count: 32)

    func parse(_ offset: String?, _ length: String?, digest: String? = PeerServeRoutesTests.digest) -> Result<PeerServeRoutes.ChunkRequest, APIError> {
        Result { () throws(APIError) in try PeerServeRoutes.parse(digest: digest, offset: offset, length: length) }
    }

    @Test func goodRequestsParse() throws {
        let digest = try #require(Digest(parsing: Self.digest))
        #expect(try parse("0", "1").get() == .init(digest: digest, offset: 0, length: 1))
        #expect(try parse("4194304", "4194304").get() == .init(digest: digest, offset: 4 << 20, length: 4 << 20))
        #expect(try parse("0", String(PeerServeRoutes.maxLength)).get().length == PeerServeRoutes.maxLength)
        let last = UInt64(Int64.max) - 1
        #expect(try parse(String(last), "1").get().offset == last, "the largest offset that ends within a file offset")
        let sha512 = "sha512:" + String(repeating: "0f", count: 64)
        #expect(try parse("0", "1", digest: sha512).get().digest.description == sha512)
    }

    @Test func malformedRequestsAre400WithAReason() {
        let cases: [(String?, String?, String?, String)] = [
            // The digest.
            ("not-a-digest", "0", "1", "<digest>"),
            ("sha256:abc", "0", "1", "<digest>"),
            ("sha256:" + String(repeating: "AB", count: 32), "0", "1", "<digest>"),
            ("md5:" + String(repeating: "ab", count: 16), "0", "1", "<digest>"),
            ("sha256:" + String(repeating: "ab", count: 32) + "/../x", "0", "1", "<digest>"),
            (nil, "0", "1", "<digest>"),
            // The offset.
            (Self.digest, nil, "1", "O must"),
            (Self.digest, "", "1", "O must"),
            (Self.digest, "-1", "1", "O must"),
            (Self.digest, "abc", "1", "O must"),
            (Self.digest, "0x10", "1", "O must"),
            (Self.digest, "+5", "1", "O must"),
            (Self.digest, " 5", "1", "O must"),
            (Self.digest, "1.5", "1", "O must"),
            (Self.digest, "18446744073709551616", "1", "O must"),  // UInt64.max + 1
            (Self.digest, "18446744073709551615", "1", "O must"),  // UInt64.max: past any file offset
            (Self.digest, "9223372036854775808", "1", "O must"),  // Int64.max + 1: pread's off_t would trap
            (Self.digest, String(repeating: "9", count: 40), "1", "O must"),
            // The length.
            (Self.digest, "0", nil, "L must"),
            (Self.digest, "0", "0", "L must"),
            (Self.digest, "0", "-4", "L must"),
            (Self.digest, "0", "four", "L must"),
            (Self.digest, "0", String(PeerServeRoutes.maxLength + 1), "L must"),
            (Self.digest, "0", "18446744073709551616", "L must"),
            // The sum.
            (Self.digest, String(Int64.max), "1", "O + L"),
            (Self.digest, String(UInt64(Int64.max) - 100), "4096", "O + L"),
        ]
        for (digest, offset, length, reason) in cases {
            switch parse(offset, length, digest: digest) {
            case .success(let request):
                Issue.record("\(digest ?? "nil") offset \(offset ?? "nil") length \(length ?? "nil") parsed as \(request)")
            case .failure(let error):
                #expect(error.status == .badRequest && error.code == "BAD_REQUEST")
                #expect(error.message.contains(reason), "\(offset ?? "nil"), \(length ?? "nil"): \(error.message)")
            }
        }
    }

    @Test func aRangeFitsABlobOnlyWhollyWithinIt() {
        #expect(PeerServeRoutes.fits(offset: 0, length: 10, size: 10))
        #expect(PeerServeRoutes.fits(offset: 9, length: 1, size: 10))
        #expect(!PeerServeRoutes.fits(offset: 9, length: 2, size: 10))
        #expect(!PeerServeRoutes.fits(offset: 10, length: 1, size: 10))
        #expect(!PeerServeRoutes.fits(offset: 11, length: 1, size: 10))
        #expect(!PeerServeRoutes.fits(offset: 0, length: 11, size: 10))
        #expect(!PeerServeRoutes.fits(offset: UInt64.max, length: UInt64.max, size: 10), "no overflow")
    }
}

import Foundation
import SpeedyCore

/// The parsers of what roles send each other: the chain header and the internal JSON bodies.
extension FuzzTarget {
    static let cluster: [FuzzTarget] = [chain, wireJSON]

    /// `X-Speedy-Chain`: at most ``ReplicationChain/maxMembers`` distinct `HOST:PORT`s with a real
    /// port and no URL syntax in the host, which format back the same.
    static let chain = FuzzTarget("chain", "a chunk write's X-Speedy-Chain header") { input in
        guard let tail = ReplicationChain.parseTail(text(input)) else { return nil }
        return first(
            expect(tail.count <= ReplicationChain.maxMembers, "\(tail.count) members"),
            expect(Set(tail).count == tail.count, "a member twice"),
            expect(tail.allSatisfy { HostPort(parsing: $0).map { (1...65535).contains($0.port) } ?? false }, "a member without a port"),
            expect(!tail.contains { $0.contains(where: { "/@?#, ".contains($0) }) }, "URL syntax in a member"),
            expect(ReplicationChain.parseTail(tail.joined(separator: ",")) == tail, "the chain parses differently"))
    }

    /// The JSON bodies of the internal APIs: the first byte picks the type; what decodes encodes
    /// and decodes back to itself.
    static let wireJSON = FuzzTarget("wire-json", "an internal API's JSON body (first byte: its type)") { input in
        guard let selector = input.first else { return nil }
        let body = Data(input.dropFirst())
        switch selector % 7 {
        case 0: return roundTrip(BlobRecord.self, body)
        case 1: return roundTrip(ChunkListing.self, body)
        case 2: return roundTrip(FileIdLease.self, body)
        case 3: return roundTrip(UploadSession.self, body)
        case 4: return roundTrip(HeartbeatReport.self, body)
        case 5: return roundTrip(ClusterSnapshot.self, body)
        default: return roundTrip(UploadLimits.self, body)
        }
    }

    /// Decodes `body` as `type`; what decodes must encode, and encode the same again after a
    /// second decoding (keys are sorted, so equal values give equal bytes).
    private static func roundTrip<T: Codable>(_ type: T.Type, _ body: Data) -> String? {
        guard let value = try? WireJSON.decoder().decode(type, from: body) else { return nil }
        guard let once = try? WireJSON.encoder().encode(value) else { return "\(type) decoded but does not encode" }
        let twice = (try? WireJSON.decoder().decode(type, from: once)).flatMap { try? WireJSON.encoder().encode($0) }
        return expect(twice == once, "\(type) encodes differently after a round trip")
    }
}

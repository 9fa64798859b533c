import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import SpeedyClients
import SpeedyCore

/// Calls the tracker (`speedy tracker`, docs/peer.md): announces what this agent holds and asks
/// who holds a blob's chunks. Every request is signed with the peer secret.
struct TrackerClient: Sendable {
    let service: ServiceClient
    let signer: PeerRequestSigner

    /// A client of the tracker at `baseURL`.
    init(baseURL: String, signer: PeerRequestSigner, transport: ClusterTransport, timeout: Duration = .seconds(5)) {
        service = ServiceClient(baseURL: baseURL, timeout: .milliseconds(timeout.milliseconds), transport: transport, http: transport.peerHTTP)
        self.signer = signer
    }

    /// Announces `announce`; returns how often to send a full one.
    func announce(_ announce: SwarmAnnounce) async throws(ServiceError) -> SwarmAnnounceReply {
        let target = "/v1/announce"
        return try decode(try await post(announce, to: target), SwarmAnnounceReply.self, target)
    }

    /// The agents (this one left out) holding chunks of `digest`.
    func peers(of digest: Digest) async throws(ServiceError) -> SwarmPeers {
        let target = "/v1/peers/\(digest)?agent=\(signer.agent)"
        let reply = try await service.send(.GET, target, headers: [("Authorization", signer.authorization(.GET, target))], limit: 4 << 20)
        return try decode(reply, SwarmPeers.self, target)
    }

    /// Reports that `accused` sent chunk `index` of `digest` with a wrong length or CRC.
    func report(_ accused: String, digest: Digest, index: Int) async throws(ServiceError) {
        let target = "/v1/reports"
        let reply = try await post(SwarmReport(agent: signer.agent, accused: accused, digest: digest.description, index: index), to: target)
        try ServiceClient.check(reply.status, reply.body, url: service.baseURL + target)
    }

    /// `value` as JSON in a signed POST to `target`.
    private func post(_ value: some Encodable, to target: String) async throws(ServiceError) -> (status: Int, headers: HTTPHeaders, body: ByteBuffer) {
        let body: ByteBuffer
        do {
            body = ByteBuffer(data: try WireJSON.encoder().encode(value))
        } catch {
            throw .badResponse(url: service.baseURL + target, reason: "cannot encode the request: \(error)")
        }
        return try await service.send(
            .POST, target, body: body,
            headers: [("Authorization", signer.authorization(.POST, target, body: body)), ("Content-Type", "application/json")])
    }

    private func decode<T: Decodable>(_ reply: (status: Int, headers: HTTPHeaders, body: ByteBuffer), _ type: T.Type, _ target: String) throws(ServiceError) -> T {
        try ServiceClient.check(reply.status, reply.body, url: service.baseURL + target)
        do {
            return try WireJSON.decoder().decode(T.self, from: reply.body)
        } catch {
            throw .badResponse(url: service.baseURL + target, reason: "\(error)")
        }
    }
}

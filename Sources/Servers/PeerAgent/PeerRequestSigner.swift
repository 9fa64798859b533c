import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import ServerSupport
import SpeedyCore

/// Signs this agent's requests to the tracker and to other agents with the peer secret
/// (``PeerKey``); the agent's id names it in every signature.
struct PeerRequestSigner: Sendable {
    let key: PeerKey
    /// This agent's id: random, chosen at start.
    let agent: String

    /// The `Authorization` value for `method target` with `body`.
    func authorization(_ method: HTTPMethod, _ target: String, body: ByteBuffer? = nil) -> String {
        key.authorization(
            method: method.rawValue, target: target, bodyHash: body.map(PeerKey.bodyHash) ?? PeerKey.emptyBodyHash,
            agent: agent, nowMs: currentTimeMillis())
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore
import Testing
import Tracker

@testable import PeerAgent

/// The tracker's API over HTTP, in process: signed announces and lookups, who may say what,
/// bad input, a restart, the summary, and how `/metrics` is guarded.
@Suite("Tracker routes")
struct TrackerTests {
    static let peerSecret = ClusterSecret("tracker-test-peer-secret-0123456789abcdef")!
    static let clusterSecret = ClusterSecret("tracker-test-cluster-secret-0123456789ab")!
    static let key = PeerKey(secret: peerSecret)
    static let blob = "sha256:" + String(repeating: "ab", count: 32)

    static func configuration(cluster: ClusterSecret? = nil) -> TrackerConfiguration {
        TrackerConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), peerSecret: peerSecret, announceInterval: .seconds(15),
            security: RoleSecurity(secret: cluster))
    }

    /// Runs `test` against a tracker router over a fresh table (no port).
    func withTracker(cluster: ClusterSecret? = nil, _ test: @escaping @Sendable (any TestClientProtocol, SwarmTable) async throws -> Void) async throws {
        let table = SwarmTable(interval: .seconds(15))
        let router = Tracker.makeRouter(table: table, configuration: Self.configuration(cluster: cluster), logger: Logger(label: "test"))
        try await Application(router: router).test(.router) { client in try await test(client, table) }
    }

    /// A request signed as `agent` (with `key`, at `nowMs`), or unsigned when `agent` is nil.
    @discardableResult
    func send(
        _ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ target: String, body: ByteBuffer? = nil, as agent: String?,
        key: PeerKey = TrackerTests.key, nowMs: Int64 = currentTimeMillis(), headers extra: HTTPFields = [:]
    ) async throws -> TestResponse {
        var headers = extra
        if let agent {
            headers[.authorization] = key.authorization(
                method: method.rawValue, target: target, bodyHash: body.map(PeerKey.bodyHash) ?? PeerKey.emptyBodyHash, agent: agent, nowMs: nowMs)
        }
        return try await client.execute(uri: target, method: method, headers: headers, body: body)
    }

    func announceBody(_ announce: SwarmAnnounce) throws -> ByteBuffer { ByteBuffer(bytes: try WireJSON.encoder().encode(announce)) }

    func announce(_ client: any TestClientProtocol, _ agent: String, port: Int, blobs: [SwarmAnnounce.Holding], full: Bool = true) async throws -> TestResponse {
        let body = try announceBody(SwarmAnnounce(agent: agent, address: "http://127.0.0.1:\(port)", full: full, blobs: blobs, servedBytes: 0))
        return try await send(client, .post, "/v1/announce", body: body, as: agent)
    }

    func peers(_ client: any TestClientProtocol, as agent: String, digest: String = TrackerTests.blob) async throws -> SwarmPeers {
        let response = try await send(client, .get, "/v1/peers/\(digest)?agent=\(agent)", as: agent)
        #expect(response.status == .ok)
        return try WireJSON.decoder().decode(SwarmPeers.self, from: Data(response.body.readableBytesView))
    }

    func code(_ response: TestResponse) -> String? {
        (try? WireJSON.decoder().decode(ErrorBody.self, from: Data(response.body.readableBytesView)))?.code
    }

    static var half: ChunkBitfield {
        var field = ChunkBitfield(count: 10)
        for index in [0, 2, 4, 9] { field.insert(index) }
        return field
    }

    @Test func aSignedAnnounceIsWhatAnotherAgentsLookupFindsAndTheCallerIsLeftOut() async throws {
        try await withTracker { client, _ in
            let reply = try await announce(client, "agent-a", port: 7001, blobs: [.init(digest: Self.blob, have: Self.half)])
            #expect(reply.status == .ok)
            let interval = try WireJSON.decoder().decode(SwarmAnnounceReply.self, from: Data(reply.body.readableBytesView))
            #expect(interval.intervalSeconds == 15)
            let found = try await peers(client, as: "agent-b")
            #expect(found == SwarmPeers(digest: Self.blob, peers: [.init(agent: "agent-a", address: "http://127.0.0.1:7001", have: Self.half, joined: 1)]), "the first to join is numbered 1")
            #expect(try await peers(client, as: "agent-a").peers.isEmpty, "the caller is left out")
            let other = "sha256:" + String(repeating: "cd", count: 32)
            #expect(try await peers(client, as: "agent-b", digest: other).peers.isEmpty)
        }
    }

    @Test func unsignedForgedStaleAndMalformedSignaturesGet401() async throws {
        try await withTracker { client, table in
            let body = try announceBody(SwarmAnnounce(agent: "x", address: "http://127.0.0.1:1", full: true, blobs: [], servedBytes: 0))
            let stranger = PeerKey(secret: ClusterSecret("not-the-swarm-secret-0123456789abcdefgh")!)
            let refused: [TestResponse] = [
                try await send(client, .post, "/v1/announce", body: body, as: nil),
                try await send(client, .post, "/v1/announce", body: body, as: "x", key: stranger),
                try await send(client, .post, "/v1/announce", body: body, as: "x", nowMs: currentTimeMillis() - 120_000),
                try await send(client, .post, "/v1/announce", body: body, as: "x", nowMs: currentTimeMillis() + 120_000),
                try await send(client, .get, "/v1/peers/\(Self.blob)?agent=x", as: nil),
                try await send(client, .get, "/v1/swarm", as: nil),
                try await send(client, .get, "/v1/swarm", as: "x", key: stranger),
                // A client's own claim to be an agent is no signature.
                try await send(client, .get, "/v1/swarm", as: nil, headers: [.speedyPeerAgent: "x"]),
                try await send(client, .get, "/v1/swarm", as: nil, headers: [.authorization: "SpeedyPeer x.1.AAAA"]),
                try await send(client, .get, "/v1/swarm", as: nil, headers: [.authorization: "Bearer \(Self.peerSecret.value)"]),
            ]
            for response in refused {
                #expect(response.status == .unauthorized)
                #expect(code(response) == "UNAUTHORIZED")
                #expect(response.headers[.wwwAuthenticate] == "SpeedyPeer realm=\"speedy-peers\"")
            }
            // A signature over another body (the announce swapped in transit) does not check.
            let signed = try announceBody(SwarmAnnounce(agent: "x", address: "http://127.0.0.1:2", full: true, blobs: [], servedBytes: 0))
            let authorization = Self.key.authorization(method: "POST", target: "/v1/announce", bodyHash: PeerKey.bodyHash(signed), agent: "x", nowMs: currentTimeMillis())
            let swapped = try await client.execute(uri: "/v1/announce", method: .post, headers: [.authorization: authorization], body: body)
            #expect(swapped.status == .unauthorized)
            #expect(table.summary().agents == 0)
            #expect(try await send(client, .get, "/healthz", as: nil).status == .ok, "the probes stay open")
        }
    }

    @Test func anAgentAnnouncesAndLooksUpAsItselfOnly() async throws {
        try await withTracker { client, table in
            let body = try announceBody(SwarmAnnounce(agent: "victim", address: "http://127.0.0.1:1", full: true, blobs: [], servedBytes: 0))
            let forged = try await send(client, .post, "/v1/announce", body: body, as: "mallory", headers: [.speedyPeerAgent: "victim"])
            #expect(forged.status == .forbidden)
            #expect(code(forged) == "FORBIDDEN")
            let lookup = try await send(client, .get, "/v1/peers/\(Self.blob)?agent=victim", as: "mallory")
            #expect(lookup.status == .forbidden)
            #expect(try await send(client, .get, "/v1/peers/\(Self.blob)", as: "mallory").status == .badRequest)
            #expect(table.summary().agents == 0)
        }
    }

    @Test func badAddressesDigestsBitfieldsAndOversizedAnnouncesGet400() async throws {
        try await withTracker { client, table in
            for address in ["127.0.0.1:7001", "http://127.0.0.1:7001/x", "http://u@127.0.0.1:7001", "gopher://h:1"] {
                let body = try announceBody(SwarmAnnounce(agent: "a", address: address, full: true, blobs: [], servedBytes: 0))
                let response = try await send(client, .post, "/v1/announce", body: body, as: "a")
                #expect(response.status == .badRequest, "\(address)")
                #expect(code(response) == "BAD_REQUEST")
            }
            let badDigest = try announceBody(
                SwarmAnnounce(agent: "a", address: "http://h:1", full: true, blobs: [.init(digest: "sha256:xyz", have: .full(count: 1))], servedBytes: 0))
            #expect(try await send(client, .post, "/v1/announce", body: badDigest, as: "a").status == .badRequest)
            let tooMany = (0...Swarm.maxBlobsPerAnnounce).map { n in
                SwarmAnnounce.Holding(digest: "sha256:" + String(String(format: "%064x", n).suffix(64)), have: .full(count: 1))
            }
            let oversized = try announceBody(SwarmAnnounce(agent: "a", address: "http://h:1", full: true, blobs: tooMany, servedBytes: 0))
            #expect(try await send(client, .post, "/v1/announce", body: oversized, as: "a").status == .badRequest)
            // A bitfield with a bit set past its count.
            let text = #"{"agent":"a","address":"http://h:1","full":true,"servedBytes":0,"blobs":[{"digest":"\#(Self.blob)","have":{"count":3,"have":"/w=="}}]}"#
            #expect(try await send(client, .post, "/v1/announce", body: ByteBuffer(string: text), as: "a").status == .badRequest)
            #expect(try await send(client, .get, "/v1/peers/sha256:nothex?agent=a", as: "a").status == .badRequest)
            #expect(table.summary().agents == 0, "nothing refused entered the table")
        }
    }

    @Test func theSwarmSummaryCountsAgentsAndBlobs() async throws {
        try await withTracker { client, _ in
            let other = "sha256:" + String(repeating: "ef", count: 32)
            _ = try await announce(client, "a1", port: 7001, blobs: [.init(digest: Self.blob, have: Self.half)])
            _ = try await announce(client, "a2", port: 7002, blobs: [.init(digest: Self.blob, have: .full(count: 10)), .init(digest: other, have: .full(count: 1))])
            let response = try await send(client, .get, "/v1/swarm", as: "a1")
            let summary = try WireJSON.decoder().decode(SwarmSummary.self, from: Data(response.body.readableBytesView))
            #expect(summary.agents == 2)
            #expect(summary.blobs == 2)
            #expect(summary.announcesPerSecond > 0)
        }
    }

    @Test func withAClusterSecretMetricsAsksForItAndTheSwarmForSignatures() async throws {
        try await withTracker(cluster: Self.clusterSecret) { client, _ in
            #expect(try await send(client, .get, "/metrics", as: nil).status == .unauthorized)
            let bearer: HTTPFields = [.authorization: "Bearer \(Self.clusterSecret.value)"]
            let metrics = try await send(client, .get, "/metrics", as: nil, headers: bearer)
            #expect(metrics.status == .ok)
            #expect(String(buffer: metrics.body).contains("speedy_tracker_agents"))
            #expect(try await send(client, .get, "/v1/swarm", as: nil, headers: bearer).status == .unauthorized, "the cluster secret is no peer signature")
            #expect(try await send(client, .get, "/v1/swarm", as: "a").status == .ok)
        }
        try await withTracker { client, _ in
            let anonymous = try await send(client, .get, "/metrics", as: nil)
            #expect(anonymous.status == .unauthorized)
            #expect(try await send(client, .get, "/metrics", as: "a").status == .ok, "without a cluster secret, a peer signature reads /metrics")
        }
    }

    /// The agent's own client against a tracker on a port: a restarted tracker knows no one
    /// until the agents announce again.
    @Test func aRestartedTrackerIsEmptyUntilTheAgentsAnnounceAgain() async throws {
        let holding = SwarmAnnounce.Holding(digest: Self.blob, have: Self.half)
        let digest = try #require(Digest(parsing: Self.blob))
        let run: @Sendable (@escaping @Sendable (TrackerClient, TrackerClient) async throws -> Void) async throws -> Void = { body in
            let table = SwarmTable(interval: .seconds(15))
            let router = Tracker.makeRouter(table: table, configuration: Self.configuration(), logger: Logger(label: "test"))
            try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
                let base = "http://127.0.0.1:\(try #require(client.port))"
                let transport = ClusterTransport(secret: nil)
                // The agents' 5 s is for a live tracker; this one shares CI's cores with every suite.
                let a = TrackerClient(baseURL: base, signer: PeerRequestSigner(key: Self.key, agent: "agent-a"), transport: transport, timeout: .seconds(30))
                let b = TrackerClient(baseURL: base, signer: PeerRequestSigner(key: Self.key, agent: "agent-b"), transport: transport, timeout: .seconds(30))
                try await body(a, b)
            }
        }
        let announce = SwarmAnnounce(agent: "agent-a", address: "http://127.0.0.1:7001", full: true, blobs: [holding], servedBytes: 0)
        try await run { a, b in
            let reply = try await a.announce(announce)
            #expect(reply.intervalSeconds == 15)
            #expect(try await b.peers(of: digest).peers.map(\.agent) == ["agent-a"])
            // Each learns where it stands in the blob's swarm: a joined first, b not at all yet.
            let joinedA = try #require(try await b.peers(of: digest).peers.first?.joined)
            #expect(try await a.peers(of: digest).callerJoined == joinedA)
            #expect(try await b.peers(of: digest).callerJoined == nil)
            _ = try await b.announce(SwarmAnnounce(agent: "agent-b", address: "http://127.0.0.1:7002", full: true, blobs: [holding], servedBytes: 0))
            #expect(try await b.peers(of: digest).callerJoined! > joinedA)
        }
        try await run { a, b in
            #expect(try await b.peers(of: digest).peers.isEmpty, "a new tracker starts empty")
            _ = try await a.announce(announce)
            #expect(try await b.peers(of: digest).peers.map(\.have) == [Self.half])
            // Another agent's key cannot speak for agent-a.
            let mallory = TrackerClient(
                baseURL: a.service.baseURL, signer: PeerRequestSigner(key: PeerKey(secret: ClusterSecret("a-stranger-secret-0123456789abcdefghij")!), agent: "agent-a"),
                transport: ClusterTransport(secret: nil))
            await #expect(throws: ServiceError.self) { try await mallory.peers(of: digest) }
        }
        // Reports of bad chunks: one agent's word alone leaves the accused in; a second agent's
        // takes it out of lookups. An agent cannot report itself into a quorum.
        try await run { a, b in
            let liar = TrackerClient(baseURL: a.service.baseURL, signer: PeerRequestSigner(key: Self.key, agent: "liar"), transport: ClusterTransport(secret: nil))
            _ = try await liar.announce(SwarmAnnounce(agent: "liar", address: "http://127.0.0.1:7009", full: true, blobs: [holding], servedBytes: 0))
            try await a.report("liar", digest: digest, index: 3)
            try await a.report("liar", digest: digest, index: 4)
            try await liar.report("liar", digest: digest, index: 3)
            #expect(try await b.peers(of: digest).peers.map(\.agent) == ["liar"], "one reporter, however often, is not enough")
            try await b.report("liar", digest: digest, index: 3)
            #expect(try await a.peers(of: digest).peers.isEmpty, "two reporters: the liar is left out of lookups")
            _ = try await liar.announce(SwarmAnnounce(agent: "liar", address: "http://127.0.0.1:7009", full: true, blobs: [holding], servedBytes: 0))
            #expect(try await b.peers(of: digest).peers.isEmpty, "announcing again does not end a quarantine")
        }
    }
}

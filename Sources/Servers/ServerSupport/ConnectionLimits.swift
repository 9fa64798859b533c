import SpeedyCore

/// What a role's port allows one client's connections: how many at once, and how long a request
/// head may take to arrive. Sockets are what a client can hold without sending a byte of a
/// request, so these are checked on the connection, before TLS and before any route.
public struct ConnectionLimits: Sendable {
    /// Open connections one client may hold (its IPv4 address, or its IPv6 /64); one more is
    /// closed at once. 0 turns the cap off.
    public var maxPerClient: Int
    /// From the first byte of a request (or from connecting, for the first request, which covers
    /// the TLS handshake) to the end of its head; a client that trickles header bytes is answered
    /// `408` and closed when it passes.
    public var headerTimeout: Duration
    /// Peers the cap does not apply to: the trusted proxies, which carry many clients each.
    public var exempt: [IPNetwork]

    /// Creates limits; the defaults allow 1024 connections per client (what internal ports need;
    /// the registry's command line asks for 256) and 20 s per request head.
    public init(maxPerClient: Int = 1024, headerTimeout: Duration = .seconds(20), exempt: [IPNetwork] = []) {
        self.maxPerClient = maxPerClient
        self.headerTimeout = headerTimeout
        self.exempt = exempt
    }
}

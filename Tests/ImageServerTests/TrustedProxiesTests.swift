import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
@testable import ImageServer
import NIOCore
import ServerSupport
import SpeedyCore
import SpeedyTestSupport
import Testing

/// `--trusted-proxy`: networks parsed strictly, the client taken from the one header the proxies
/// set, and only from a trusted peer.
@Suite("Trusted proxies")
struct TrustedProxiesTests {
    static func peer(_ text: String) -> SocketAddress { try! SocketAddress(ipAddress: text, port: 40000) }

    @Test func networksParseStrictlyAndMatchByPrefix() throws {
        let ten = try #require(IPNetwork("10.0.0.0/8"))
        #expect(ten.contains(Self.peer("10.200.3.4")) && !ten.contains(Self.peer("11.0.0.1")))
        #expect(ten.contains(Self.peer("::ffff:10.1.2.3")), "an IPv4-mapped peer is its IPv4 address")
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8", "host bits are cleared")
        #expect(IPNetwork("192.0.2.7")?.contains(Self.peer("192.0.2.7")) == true)
        #expect(IPNetwork("192.0.2.7")?.contains(Self.peer("192.0.2.8")) == false)
        let v6 = try #require(IPNetwork("2001:db8::/32"))
        #expect(v6.contains(Self.peer("2001:db8:ffff::1")) && !v6.contains(Self.peer("2001:db9::1")) && !v6.contains(Self.peer("10.0.0.1")))
        #expect(IPNetwork("0.0.0.0/0")?.contains(Self.peer("203.0.113.1")) == true)
        for bad in ["", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/ 8", "10.0.0.0/0008", "10.0.0/8", "010.0.0.1", "::/129", "host/8",
                    "10.0.0.0/8/8", "1.2.3.4:80", "[::1]", "fe80::1%eth0", String(repeating: "1", count: 100)] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
    }

    @Test func theClientIsTheRightmostHopThatIsNoTrustedProxy() {
        let proxies = TrustedProxies(networks: [IPNetwork("127.0.0.0/8")!, IPNetwork("10.0.0.0/8")!])
        func client(_ peer: String, _ value: String?, _ proxies: TrustedProxies = proxies, name: HTTPField.Name = .init("X-Forwarded-For")!) -> String? {
            var headers = HTTPFields()
            if let value { headers[name] = value }
            return proxies.client(peer: Self.peer(peer), headers: headers)?.ipAddress
        }
        #expect(client("127.0.0.1", "203.0.113.9") == "203.0.113.9")
        #expect(client("127.0.0.1", "198.51.100.1, 203.0.113.9") == "203.0.113.9", "what the client claimed further left is not taken")
        #expect(client("127.0.0.1", "203.0.113.9, 10.1.1.1") == "203.0.113.9", "a second trusted proxy is skipped")
        #expect(client("127.0.0.1", "203.0.113.9:5123") == "203.0.113.9")
        #expect(client("127.0.0.1", "[2001:db8::5]:443") == "2001:db8::5")
        #expect(client("127.0.0.1", "2001:db8::5") == "2001:db8::5")
        #expect(client("192.0.2.1", "203.0.113.9") == nil, "from an untrusted peer the header is ignored")
        #expect(client("127.0.0.1", nil) == nil)
        #expect(client("127.0.0.1", "unknown") == nil, "a hop that is no address ends the walk: the proxy is the client")
        #expect(client("127.0.0.1", "203.0.113.9, garbage") == nil)
        #expect(client("127.0.0.1", "10.0.0.1, 127.0.0.1") == nil, "nothing but proxies")
        let long = Array(repeating: "garbage", count: 10_000).joined(separator: ",") + ", 203.0.113.9"
        #expect(client("127.0.0.1", long) == "203.0.113.9", "only the last hops of a long header are read")
        let proxiesOnly = Array(repeating: "10.0.0.1", count: 40).joined(separator: ",")
        #expect(client("127.0.0.1", "203.0.113.9," + proxiesOnly) == nil, "past 32 hops the walk stops")
        // RFC 7239, and only that header when that is the one configured.
        let rfc = TrustedProxies(networks: proxies.networks, header: .forwarded)
        let forwarded = HTTPField.Name("Forwarded")!
        #expect(client("127.0.0.1", #"for=198.51.100.1, for="[2001:db8:cafe::17]:4711";proto=https"#, rfc, name: forwarded) == "2001:db8:cafe::17")
        #expect(client("127.0.0.1", "proto=https;For=203.0.113.4", rfc, name: forwarded) == "203.0.113.4")
        #expect(client("127.0.0.1", "for=_hidden", rfc, name: forwarded) == nil)
        #expect(client("127.0.0.1", "203.0.113.9", rfc) == nil, "X-Forwarded-For is not read when the proxies set Forwarded")
        #expect(client("127.0.0.1", "for=203.0.113.9", proxies, name: forwarded) == nil, "nor Forwarded when they set X-Forwarded-For")
    }

    @Test func forwardingHeadersAreFuzzed() {
        let proxies = TrustedProxies(networks: [IPNetwork("127.0.0.0/8")!])
        let rfc = TrustedProxies(networks: proxies.networks, header: .forwarded)
        let seeds = ["203.0.113.9", "1.2.3.4, 10.0.0.1", "[2001:db8::1]:443", "for=1.2.3.4;proto=http", #"for="[::1]:80", for=unknown"#, "10.0.0.0/8"]
        for input in RequestParserFuzzTests.inputs(seeds, seed: 31) {
            var headers = HTTPFields()
            headers[.init("X-Forwarded-For")!] = input
            headers[.init("Forwarded")!] = input
            for client in [proxies.client(peer: Self.peer("127.0.0.1"), headers: headers), rfc.client(peer: Self.peer("127.0.0.1"), headers: headers)] {
                guard let client else { continue }
                #expect(!proxies.trusts(client), "\(input)")
                #expect(client.ipAddress.flatMap(IPNetwork.parseAddress) != nil, "\(input)")
            }
            if let network = IPNetwork(input) {
                #expect(IPNetwork(network.description) == network, "\(input)")
            }
        }
    }

    /// The middleware, on a live port: the route sees the forwarded client only from a trusted
    /// peer, and what the limits key on follows it.
    @Test func theMiddlewareHandsTheForwardedClientToEverythingAfterIt() async throws {
        for (networks, expected) in [(["127.0.0.1"], "203.0.113.9"), (["192.0.2.0/24"], "127.0.0.1")] {
            let router = Router(context: RegistryRequestContext.self)
            router.middlewares.add(TrustedProxyMiddleware(proxies: TrustedProxies(networks: networks.map { IPNetwork($0)! })))
            router.get("/who") { _, context in "\(context.clientAddress) \(context.client) \(context.peerAddress?.ipAddress ?? "-")" }
            try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
                let reply = try await client.execute(uri: "/who", method: .get, headers: [.init("X-Forwarded-For")!: "198.51.100.7, 203.0.113.9"])
                #expect(String(buffer: reply.body) == "\(expected) \(expected) 127.0.0.1", "trusting \(networks)")
            }
        }
    }
}

/// The table behind `--max-connections-per-client`.
@Suite("Connections per client")
struct ClientConnectionsTests {
    @Test func eachClientHasItsShareAndTrustedProxiesNone() throws {
        let proxy = try SocketAddress(ipAddress: "10.0.0.5", port: 1)
        let table = ClientConnections(limits: ConnectionLimits(maxPerClient: 2, exempt: [IPNetwork("10.0.0.0/8")!]))
        let a = try SocketAddress(ipAddress: "192.0.2.1", port: 1)
        let b = try SocketAddress(ipAddress: "192.0.2.2", port: 1)
        #expect(table.admit(a) && table.admit(a))
        #expect(!table.admit(a), "a third from one client")
        #expect(table.admit(b), "another client has its own share")
        #expect(table.count(of: a) == 2, "a refusal is not counted")
        table.release(a)
        #expect(table.admit(a))
        #expect((0..<10).allSatisfy { _ in table.admit(proxy) }, "a trusted proxy carries many clients")
        // One IPv6 host is its /64, however many addresses it takes.
        let v6 = try (1...3).map { try SocketAddress(ipAddress: "2001:db8:0:1::\($0)", port: 1) }
        #expect(table.admit(v6[0]) && table.admit(v6[1]) && !table.admit(v6[2]))
        // Releasing what was never counted does not go below zero.
        table.release(b)
        table.release(b)
        #expect(table.count(of: b) == 0)
        #expect(ClientConnections(limits: ConnectionLimits(maxPerClient: 0)).admit(a), "0 is no cap")
    }
}

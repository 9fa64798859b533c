import Foundation
@testable import ImageServer
import Logging
import NIOCore
import RegistryTokens
@testable import ServerSupport
import SpeedyCore
import SpeedyTestSupport
import Testing

@Suite("Client limits")
struct ClientLimitTests {
    /// Only waiting on the client counts, and only 16 KiB moved counts as progress: a byte now
    /// and then keeps nothing alive.
    @Test func progressNeedsBytesNotJustActivity() async throws {
        let limit = Duration.milliseconds(200)
        let drip = ProgressMark()
        for _ in 0..<3 {
            drip.beginWait()
            try await Task.sleep(for: .milliseconds(80))
            drip.endWait(bytes: 1)
        }
        drip.beginWait()
        #expect(drip.expire(ifWaitingLongerThan: limit, now: .now), "240 ms of waiting for 3 bytes")

        let steady = ProgressMark()
        for _ in 0..<3 {
            steady.beginWait()
            try await Task.sleep(for: .milliseconds(80))
            steady.endWait(bytes: ProgressMark.progressBytes)
        }
        steady.beginWait()
        #expect(!steady.expire(ifWaitingLongerThan: limit, now: .now))

        // Time spent on Speedy's side (not waiting on the client) is not the client's.
        let slowServer = ProgressMark()
        slowServer.beginWait()
        slowServer.endWait(bytes: 10)
        try await Task.sleep(for: .milliseconds(300))
        slowServer.beginWait()
        #expect(!slowServer.expire(ifWaitingLongerThan: limit, now: .now))
        #expect(slowServer.expire(ifWaitingLongerThan: limit, now: .now + .milliseconds(250)))
        #expect(slowServer.expired)
    }

    @Test func ipv6ClientsCountByTheirSlash64() throws {
        let a = try SocketAddress(ipAddress: "2001:db8:0:1::5", port: 1)
        let b = try SocketAddress(ipAddress: "2001:db8:0:1:ffff::9", port: 2)
        let other = try SocketAddress(ipAddress: "2001:db8:0:2::5", port: 1)
        #expect(ClientNetwork.key(a) == "2001:db8:0:1::/64")
        #expect(ClientNetwork.key(a) == ClientNetwork.key(b))
        #expect(ClientNetwork.key(a) != ClientNetwork.key(other))
        #expect(ClientNetwork.key(try SocketAddress(ipAddress: "192.0.2.7", port: 1)) == "192.0.2.7")
        #expect(ClientNetwork.key(try SocketAddress(ipAddress: "::1", port: 1)) == "::1")
        #expect(ClientNetwork.key(nil) == "unknown")
    }

    /// A user removed from the file (then SIGHUP) loses what their unexpired tokens say.
    @Test func tokensOfRemovedUsersStopWorking() async throws {
        let temporary = try TemporaryDirectory("auth")
        defer { temporary.remove() }
        let dir = temporary.path
        let users = dir + "/htpasswd"
        try (UserFile.line(user: "alice", password: "pw-alice", cost: 4) + "\n").write(toFile: users, atomically: true, encoding: .utf8)
        try "* ** pull\n".write(toFile: dir + "/access", atomically: true, encoding: .utf8)
        let auth = try await RegistryAuth.load(
            RegistryAuthConfiguration(htpasswdPath: users, accessPath: dir + "/access"), logger: .init(label: "test"))
        let (token, _) = try await auth.issuer.issue(user: "alice", access: [.init(type: "repository", name: "app", actions: ["pull"])])
        let identity = try #require(try await auth.identify("Bearer " + token))
        #expect(auth.allows(identity, .pull, on: "app"))
        #expect(!auth.allows(identity, .push, on: "app"))
        try (UserFile.line(user: "bob", password: "pw-bob", cost: 4) + "\n").write(toFile: users, atomically: true, encoding: .utf8)
        await auth.reload()
        #expect(!auth.allows(identity, .pull, on: "app"))
        #expect(try await auth.identify("Basic " + Data("alice:pw-alice".utf8).base64EncodedString()) == nil)
    }
}

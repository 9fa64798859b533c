import Foundation
import HTTPTypes
import ServerSupport
import SpeedyCore
import Testing

/// The route authorization tables: each role reaches the routes its code calls and no other,
/// the operator every route, and no rule hides a later one.
@Suite("Route authorization")
struct RouteAuthorizationTests {
    @Test func eachRoleReachesItsRoutesOnly() {
        let master = RouteAuthorization.chunkmaster
        #expect(master.allows(.chunkserver, .post, "/v1/heartbeat"))
        #expect(!master.allows(.imageserver, .post, "/v1/heartbeat"))
        #expect(master.allows(.imageserver, .get, "/v1/cluster"))
        #expect(!master.allows(.imageserver, .post, "/v1/cluster"))
        #expect(!master.allows(.imageserver, .delete, "/v1/servers/cs1"))
        #expect(!master.allows(.chunkserver, .post, "/v1/servers/cs1/status"))
        #expect(master.allows(.operator, .delete, "/v1/servers/cs1"))
        // A route no rule names, or one added later, is the operator's alone.
        #expect(!master.allows(.chunkmaster, .get, "/v1/some-route-added-later"))
        #expect(master.allows(.operator, .get, "/v1/some-route-added-later"))

        let meta = RouteAuthorization.metaserver
        #expect(meta.allows(.imageserver, .put, "/v1/manifests"))
        #expect(!meta.allows(.chunkserver, .put, "/v1/manifests"))
        #expect(!meta.allows(.chunkmaster, .post, "/v1/blobs"))
        #expect(meta.allows(.imageserver, .post, "/v1/blobs/repair"))
        #expect(!meta.allows(.imageserver, .get, "/v1/blobs"))
        #expect(meta.allows(.chunkmaster, .get, "/v1/chunks/3/99/users"))
        #expect(!meta.allows(.imageserver, .post, "/v1/gc/sweep"))

        let chunks = RouteAuthorization.chunkserver
        #expect(chunks.allows(.chunkserver, .put, "/v1/chunks/1/2"))
        #expect(!chunks.allows(.chunkserver, .delete, "/v1/chunks/1/2"))
        #expect(chunks.allows(.chunkmaster, .get, "/v1/chunks/1/digests"))
        #expect(!chunks.allows(.imageserver, .get, "/v1/chunks/1/digests"))
        #expect(!chunks.allows(.tracker, .get, "/v1/chunks/1/2"))
        #expect(!chunks.allows(.imageserver, .get, "/v1/chunks/1/2/3"))
        for table in RouteAuthorization.all {
            #expect(table.allows(.monitor, .get, "/metrics"), "\(table.server)")
            #expect(!table.allows(.monitor, .post, "/metrics"), "\(table.server)")
            #expect(!table.allows(.monitor, .get, "/v1/cluster"), "\(table.server)")
        }
    }

    @Test func aPatternMatchesWholeSegmentsAndTheRestOnlyAtItsEnd() {
        let table = RouteAuthorization(
            server: "test",
            rules: [
                .init([.get], "/v1/things/{id}", [.imageserver]),
                .init([], "/v2/**", [.tracker]),
            ])
        #expect(table.allows(.imageserver, .get, "/v1/things/7"))
        #expect(!table.allows(.imageserver, .get, "/v1/things"))
        #expect(!table.allows(.imageserver, .get, "/v1/things/7/8"))
        #expect(!table.allows(.imageserver, .get, "/v1/thingsx/7"))
        #expect(table.allows(.tracker, .delete, "/v2/a/b/c"))
        #expect(table.allows(.tracker, .get, "/v2"))
        #expect(!table.allows(.tracker, .get, "/v3/a"))
    }

    @Test func noRuleHidesALaterOne() {
        for table in RouteAuthorization.all {
            for rule in table.rules {
                // A path of the rule's own shape, numbers for its parameters, must be decided by it.
                let path = rule.path.split(separator: "/").map { $0.hasPrefix("{") ? "1" : String($0) }.joined(separator: "/")
                for method in rule.methods {
                    let decided = table.rule(for: method, "/" + path)
                    #expect(decided?.path == rule.path, "\(table.server): \(method) /\(path) is decided by \(decided?.description ?? "nothing")")
                }
            }
        }
    }
}

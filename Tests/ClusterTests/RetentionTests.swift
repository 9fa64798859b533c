import Foundation
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// Retention rules (issue 26): the metaserver's --retention file applied by `chunktool
    /// retention` (dry run, then for real, then re-read on SIGHUP) on a repository of 30 tags, and
    /// by the scheduled collection before it sweeps.
    @Suite("Retention", .serialized)
    struct RetentionTests {
        let images = GarbageCollectionTests()

        /// Pushes an image per tag (its own config, one shared layer), `release-*` first; the
        /// manifest digest of each tag.
        func pushTags(_ client: ServiceClient, _ repository: String, _ tags: [String]) async throws -> [String: Digest] {
            var digests: [String: Digest] = [:]
            for tag in tags {
                let (status, digest) = try await images.pushImage(
                    client, repository, tag: tag, config: Array("{\"tag\":\"\(tag)\"}".utf8), layers: [Array("shared layer".utf8)])
                #expect(status == 201, "\(repository):\(tag)")
                digests[tag] = digest
            }
            return digests
        }

        /// Every tag of `repository`.
        func tags(_ client: ServiceClient, _ repository: String) async throws -> Set<String> {
            let reply = try await client.send(.GET, "/v2/\(repository)/tags/list?n=1000")
            let object = try JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView)) as? [String: Any]
            return Set(object?["tags"] as? [String] ?? [])
        }

        /// `chunktool retention ARGS --json` against the registry's metaserver; the report.
        func retention(_ cluster: ClusterHarness, _ registry: ClusterHarness.Registry, _ arguments: [String]) async throws -> RetentionReport {
            let run = try await cluster.chunktool(["retention", "--master", registry.masterURL, "--meta", registry.metaURL, "--json"] + arguments)
            #expect(run.status == 0, "\(run.output)\n\(cluster.log("meta"))")
            return try WireJSON.decoder().decode(RetentionReport.self, from: Data(run.output.utf8))
        }

        @Test func aRepositoryOfThirtyTagsKeepsWhatItsRuleSaysDryRunFirst() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let rules = cluster.root + "/retention"
            try "# repositories   a tag is kept when any condition holds\nteam/**  keep-newest=5 keep-recent=10s keep-tags=release-*\n"
                .write(toFile: rules, atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(
                imageserverArguments: ["--pull-record-interval", "200ms"], metaserverArguments: ["--retention", rules])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let all = ["release-1", "release-2"] + (0..<28).map { String(format: "t%02d", $0) }
            _ = try await pushTags(client, "team/app", all)
            _ = try await pushTags(client, "other/app", ["a", "b"])
            #expect(try await tags(client, "team/app").count == 30)

            // Pushed over 10 s ago; two of the old ones pulled just now (the imageserver tells the
            // metaserver within 200 ms). The window is wide so a stalled machine does not close it.
            try await Task.sleep(for: .seconds(11))
            for tag in ["t03", "t07"] {
                #expect(try await client.send(.GET, "/v2/team/app/manifests/\(tag)", headers: [("Accept", GarbageCollectionTests.ociManifest)]).status == 200)
            }
            let meta = MetaClient(baseURL: registry.metaURL, transport: ClusterHarness.transport)
            let recorded = await cluster.eventually(within: 5) {
                let pulled = (try? await meta.tagDetails(in: "team/app", after: nil, limit: 100).tags.filter { $0.pulledMs > 0 }.map(\.tag)) ?? []
                return Set(pulled) == ["t03", "t07"]
            }
            #expect(recorded)

            let kept: Set = ["t23", "t24", "t25", "t26", "t27", "t03", "t07", "release-1", "release-2"]
            let dry = try await retention(cluster, registry, ["--dry-run"])
            #expect(dry.dryRun && dry.repositories == 1)
            #expect(dry.tagsRemoved == 21 && dry.tagsKept == 9, "\(dry)")
            #expect(Set(dry.removals.map(\.tag)) == Set(all).subtracting(kept))
            #expect(dry.removals.allSatisfy { $0.repository == "team/app" && $0.ruleLine == 2 && $0.reason.contains("not among the newest 5") })
            #expect(try await tags(client, "team/app").count == 30, "a dry run removes nothing")
            let text = try await cluster.chunktool(["retention", "--master", registry.masterURL, "--meta", registry.metaURL, "--dry-run"])
            #expect(text.output.contains("team/app:t00"), "\(text.output)")
            #expect(text.output.contains("would remove 21 tags"), "\(text.output)")

            let real = try await retention(cluster, registry, [])
            #expect(!real.dryRun && real.tagsRemoved == 21)
            #expect(try await tags(client, "team/app") == kept)
            #expect(try await tags(client, "other/app") == ["a", "b"], "no rule, no removal")
            // Only tags went: their manifests are garbage collection's, which sweeps them now.
            let gc = try await cluster.chunktool(["gc", "--master", registry.masterURL, "--meta", registry.metaURL, "--grace", "0s", "--json"])
            let swept = try JSONSerialization.jsonObject(with: Data(gc.output.utf8)) as? [String: Any]
            #expect(swept?["manifests"] as? Int == 21, "\(gc.output)")
            #expect(await images.pullImage(client, "team/app", "t03") == nil)

            // New rules on SIGHUP; a file that does not parse leaves them as they were.
            try "team/** keep-newest=2\n".write(toFile: rules, atomically: true, encoding: .utf8)
            guard let metaserver = ClusterHarness.pid(listeningOn: Int(registry.metaURL.split(separator: ":").last!)!) else {
                Issue.record("no metaserver process")
                return
            }
            kill(metaserver, SIGHUP)
            let reloaded = await cluster.eventually(within: 10) { cluster.log("meta").contains("retention rules re-read") }
            #expect(reloaded)
            #expect(try await retention(cluster, registry, ["--dry-run"]).tagsRemoved == 7)
            try "team/** keep-forever\n".write(toFile: rules, atomically: true, encoding: .utf8)
            kill(metaserver, SIGHUP)
            #expect(await cluster.eventually(within: 10) { cluster.log("meta").contains("the retention rules read before stay") })
            #expect(try await retention(cluster, registry, ["--dry-run"]).tagsRemoved == 7)
        }

        @Test func theScheduledCollectionAppliesTheRulesBeforeItSweeps() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let rules = cluster.root + "/retention"
            try "team/** keep-newest=1\n".write(toFile: rules, atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(metaserverArguments: [
                "--retention", rules, "--gc-every", "1s", "--gc-grace", "0s", "--gc-chunk-grace", "10m",
            ])
            let client = ServiceClient(baseURL: registry.registryURL, transport: .plain)
            let digests = try await pushTags(client, "team/app", ["one", "two", "three"])
            let untagged = await cluster.eventually(within: 20) { (try? await tags(client, "team/app")) == ["three"] }
            #expect(untagged, "\(cluster.log("meta"))")
            // The next collection sweeps what the rules untagged.
            let swept = await cluster.eventually(within: 20) {
                (try? await client.send(.GET, "/v2/team/app/manifests/\(digests["one"]!)"))?.status == 404
            }
            #expect(swept)
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            let events = try await master.events(limit: 1000)
            // Runs come every second while the tags are pushed: the removals may be spread over several.
            let removed = events.filter { $0.kind == "retention" }.compactMap { event in
                event.message.split(separator: " ").drop { $0 != "removed" }.dropFirst().first.flatMap { Int($0) }
            }
            #expect(removed.reduce(0, +) == 2, "\(events.map(\.message))")
        }
    }
}

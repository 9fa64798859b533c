import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

extension ProcessSuites {
    /// `chunktool sync` (issue 26): repositories copied from Debian's `docker-registry` (htpasswd
    /// and TLS) into a cluster and back out, digests compared, signatures carried along,
    /// resumed, and deletions only when asked.
    @Suite("Replication (chunktool sync)", .serialized)
    struct RegistrySyncTests {
        let upstreams = PullThroughCacheTests()

        /// The digest `reference` names in `repository` of the upstream (its login, its CA).
        func upstreamDigest(_ upstream: PullThroughCacheTests.Upstream, _ repository: String, _ reference: String) async throws -> String? {
            let client = ServiceClient(baseURL: "https://\(upstream.hostPort)", transport: try ClusterTransport(secret: nil, caFile: upstream.ca))
            let login = "Basic " + Data("\(PullThroughCacheTests.user):\(PullThroughCacheTests.password)".utf8).base64EncodedString()
            let reply = try await client.send(
                .HEAD, "/v2/\(repository)/manifests/\(reference)", headers: [("Authorization", login), ("Accept", GarbageCollectionTests.ociManifest)])
            return reply.status == 200 ? reply.headers.first(name: "Docker-Content-Digest") : nil
        }

        /// The digest `reference` names in `repository` of the cluster; nil when it has none.
        func clusterDigest(_ registry: ClusterHarness.Registry, _ repository: String, _ reference: String) async throws -> String? {
            let reply = try await ServiceClient(baseURL: registry.registryURL, transport: .plain)
                .send(.HEAD, "/v2/\(repository)/manifests/\(reference)", headers: [("Accept", GarbageCollectionTests.ociManifest)])
            return reply.status == 200 ? reply.headers.first(name: "Docker-Content-Digest") : nil
        }

        /// `chunktool sync ARGS --json`: its status and report.
        func sync(_ cluster: ClusterHarness, _ arguments: [String]) async throws -> (status: Int32, report: [String: Any]) {
            let run = try await cluster.chunktool(["sync", "--json"] + arguments)
            let report = (try? JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any]) ?? [:]
            return (run.status, report)
        }

        @Test func repositoriesGoBothWaysWithTheirDigestsAndSignatures() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let upstream = try await upstreams.makeUpstream(cluster)
            let one = try await cluster.makeImage(named: "one", randomBytes: 5 << 20)
            let two = try await cluster.makeImage(named: "two", randomBytes: 1 << 20)
            let signature = try await cluster.makeImage(named: "signature", randomBytes: 1000)
            try await upstreams.push(one, to: upstream, as: "team/app:v1")
            try await upstreams.push(two, to: upstream, as: "team/app:v2")
            try await upstreams.push(one, to: upstream, as: "team/app:old")
            try await upstreams.push(two, to: upstream, as: "team/tools:v1")
            let v1 = try #require(try await upstreamDigest(upstream, "team/app", "v1"))
            // A signature as cosign stores it on a registry without the referrers API: a tag named for its subject.
            let signatureTag = "sha256-" + v1.dropFirst(7) + ".sig"
            try await upstreams.push(signature, to: upstream, as: "team/app:\(signatureTag)")
            let registry = try await cluster.startRegistry()
            let from = ["--from", "https://\(upstream.hostPort)", "--from-credentials", upstream.login, "--from-ca", upstream.ca]
            let into = from + ["--to", registry.registryURL, "--master", registry.masterURL]

            // In: the v* tags of every team/X, with the signature, digests unchanged.
            let first = try await sync(cluster, into + ["team/*:v* -> mirror"])
            #expect(first.status == 0, "\(first.report)")
            #expect(first.report["tagsCopied"] as? Int == 3, "\(first.report)")
            #expect(first.report["referrersCopied"] as? Int == 1, "\(first.report)")
            for (repository, tag) in [("team/app", "v1"), ("team/app", "v2"), ("team/tools", "v1"), ("team/app", signatureTag)] {
                let source = try await upstreamDigest(upstream, repository, tag)
                #expect(source != nil)
                #expect(try await clusterDigest(registry, "mirror/" + repository, tag) == source, "\(repository):\(tag)")
            }
            #expect(try await clusterDigest(registry, "mirror/team/app", "old") == nil, "not a v* tag")
            let pulled = try await upstreams.skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.hostPort)/mirror/team/app:v1", "oci:\(cluster.root)/pulled:v1"])
            #expect(pulled.status == 0, "\(pulled.output)")
            try upstreams.expectImage(cluster.root + "/pulled", from: one)

            // Again: nothing to send, every tag up to date (an interrupted run resumes this way).
            let again = try await sync(cluster, into + ["team/*:v* -> mirror"])
            #expect(again.status == 0)
            #expect(again.report["tagsCopied"] as? Int == 0 && again.report["tagsUpToDate"] as? Int == 3, "\(again.report)")
            #expect(again.report["blobsCopied"] as? Int == 0, "\(again.report)")

            // Out: from the cluster to the upstream, under another name, with the signature.
            let out = try await sync(cluster, [
                "--from", registry.registryURL, "--to", "https://\(upstream.hostPort)", "--to-credentials", upstream.login, "--to-ca", upstream.ca,
                "--master", registry.masterURL, "mirror/team/app -> backup/app",
            ])
            #expect(out.status == 0, "\(out.report)")
            #expect(out.report["tagsCopied"] as? Int == 2 && out.report["referrersCopied"] as? Int == 1, "\(out.report)")
            for tag in ["v1", "v2", signatureTag] {
                #expect(try await upstreamDigest(upstream, "backup/app", tag) == (try await upstreamDigest(upstream, "team/app", tag)), "\(tag)")
            }

            // Deletions only when asked: v2 goes upstream; a plain sync keeps it, --delete removes it.
            let client = ServiceClient(baseURL: "https://\(upstream.hostPort)", transport: try ClusterTransport(secret: nil, caFile: upstream.ca))
            let login = "Basic " + Data("\(PullThroughCacheTests.user):\(PullThroughCacheTests.password)".utf8).base64EncodedString()
            let v2 = try #require(try await upstreamDigest(upstream, "team/app", "v2"))
            #expect(try await client.send(.DELETE, "/v2/team/app/manifests/\(v2)", headers: [("Authorization", login)]).status == 202)
            #expect(try await sync(cluster, into + ["team/app:v* -> mirror/team/app"]).status == 0)
            #expect(try await clusterDigest(registry, "mirror/team/app", "v2") == v2)
            let deleting = try await sync(cluster, into + ["--delete", "team/app:v* -> mirror/team/app"])
            #expect(deleting.report["tagsDeleted"] as? Int == 1, "\(deleting.report)")
            #expect(try await clusterDigest(registry, "mirror/team/app", "v2") == nil)
            #expect(try await clusterDigest(registry, "mirror/team/app", "v1") == v1)

            // Bad rules are refused before anything runs.
            let bad = try await cluster.chunktool(["sync", "--from", registry.registryURL, "--to", registry.registryURL, "team/app"])
            #expect(bad.status == 2)
        }
    

        /// The metaserver's --sync jobs: a job added to the file is taken on SIGHUP, runs on its
        /// schedule (a tag pushed upstream later arrives by itself), shows as a job and in the
        /// event log, and its last run is kept across a restart.
        @Test func theMetaserverRunsSyncJobsOnTheirSchedule() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let upstream = try await upstreams.makeUpstream(cluster)
            let one = try await cluster.makeImage(named: "one", randomBytes: 2 << 20)
            let two = try await cluster.makeImage(named: "two", randomBytes: 1 << 20)
            try await upstreams.push(one, to: upstream, as: "team/app:v1")
            let jobs = cluster.root + "/sync"
            try "# no job yet\n".write(toFile: jobs, atomically: true, encoding: .utf8)
            let registry = try await cluster.startRegistry(metaserverArguments: ["--sync", jobs])
            // The registry's own address is known only now: the job comes on SIGHUP.
            try """
                sync from-upstream every=2s
                from https://\(upstream.hostPort) credentials=\(upstream.login) ca=\(upstream.ca)
                to \(registry.registryURL)
                rule team/*:v* -> mirror
                """.write(toFile: jobs, atomically: true, encoding: .utf8)
            let metaPort = Int(registry.metaURL.split(separator: ":").last!)!
            let metaserver = try #require(ClusterHarness.pid(listeningOn: metaPort))
            kill(metaserver, SIGHUP)
            let v1 = try #require(try await upstreamDigest(upstream, "team/app", "v1"))
            let copied = await cluster.eventually(within: 30) { (try? await clusterDigest(registry, "mirror/team/app", "v1")) == v1 }
            #expect(copied, "\(cluster.log("meta"))")

            // Pushed upstream later: the next run brings it, with no one asking.
            try await upstreams.push(two, to: upstream, as: "team/app:v2")
            let v2 = try #require(try await upstreamDigest(upstream, "team/app", "v2"))
            let followed = await cluster.eventually(within: 30) { (try? await clusterDigest(registry, "mirror/team/app", "v2")) == v2 }
            #expect(followed, "\(cluster.log("meta"))")
            let pulled = try await upstreams.skopeo(["copy", "--src-tls-verify=false", "docker://\(registry.hostPort)/mirror/team/app:v2", "oci:\(cluster.root)/pulled:v2"])
            #expect(pulled.status == 0, "\(pulled.output)")
            try upstreams.expectImage(cluster.root + "/pulled", from: two)

            // In the event log (runs that copied something) and among the console's jobs.
            let master = MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport)
            // Posted after the run's last copy: waited for.
            var events: [ClusterEvent] = []
            _ = await cluster.eventually(within: 10) {
                events = ((try? await master.events(limit: 1000)) ?? []).filter { $0.kind == "sync" }
                return events.count >= 2
            }
            #expect(events.count >= 2, "\(events.map(\.message))")
            #expect(events.allSatisfy { $0.message.hasPrefix("job from-upstream: sync: 1 tags copied") }, "\(events.map(\.message))")
            let listed = try await master.snapshot().jobs ?? []
            #expect(listed.contains { $0.report.kind == "sync" && $0.report.target.hasPrefix("from-upstream: ") && $0.report.state == .finished })

            // When each job is next due is kept, for a restart not to run it again at once.
            let state = try #require(FileManager.default.contents(atPath: cluster.root + "/meta/sync-state.json"))
            let next = try #require(try JSONSerialization.jsonObject(with: state) as? [String: Int64])
            #expect(next.keys.sorted() == ["from-upstream"])
            #expect(abs(Int64(Date().timeIntervalSince1970 * 1000) - (next["from-upstream"] ?? 0)) < 60_000)
        }
    }
}

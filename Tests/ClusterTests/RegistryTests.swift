import AsyncHTTPClient
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
    /// The imageserver with real clients: skopeo and umoci from the distribution, and raw HTTP for
    /// what those clients do not exercise.
    @Suite("Registry with real clients", .serialized)
    struct RegistryTests {
        static let ociManifest = "application/vnd.oci.image.manifest.v1+json"

        /// The SHA-256 digests of every blob in an OCI layout.
        func layoutBlobs(_ layout: String) throws -> Set<String> {
            Set(try FileManager.default.contentsOfDirectory(atPath: layout + "/blobs/sha256").map { "sha256:" + $0 })
        }

        func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
            TestBytes.random(count, seed: Int(seed))
        }

        /// Pushes a blob in one `POST ?digest=` and returns its digest.
        func pushBlob(_ client: ServiceClient, repo: String, _ data: [UInt8]) async throws -> Digest {
            let digest = Digest.of(data)
            let reply = try await client.send(.POST, "/v2/\(repo)/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(reply.status == 201, "push of \(digest) answered \(reply.status): \(String(buffer: reply.body))")
            return digest
        }

        /// An image manifest referencing `config` and `layers`.
        func manifest(config: Digest, configSize: Int, layers: [(Digest, Int)], subject: (Digest, Int)? = nil, artifactType: String? = nil) -> [UInt8] {
            var object: [String: Any] = [
                "schemaVersion": 2, "mediaType": Self.ociManifest,
                "config": ["mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.description, "size": configSize],
                "layers": layers.map { ["mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": $0.0.description, "size": $0.1] },
            ]
            if let subject { object["subject"] = ["mediaType": Self.ociManifest, "digest": subject.0.description, "size": subject.1] }
            if let artifactType { object["artifactType"] = artifactType }
            return [UInt8](try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
        }

        @Test func skopeoCopiesAnImageInAndOutWithIdenticalDigests() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            // 10 MB of random data: a layer of three 4 MiB chunks.
            let layout = try await cluster.makeImage(named: "app", randomBytes: 10_000_000)
            let push = try await ClusterHarness.run(
                "/usr/bin/skopeo", ["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(push.status == 0, "skopeo push failed: \(push.output)\n\(cluster.log("imageserver"))")

            let pulled = cluster.root + "/pulled"
            let pull = try await ClusterHarness.run(
                "/usr/bin/skopeo", ["copy", "--src-tls-verify=false", "docker://\(registry.hostPort)/team/app:v1", "oci:\(pulled):v1"])
            #expect(pull.status == 0, "skopeo pull failed: \(pull.output)")
            // Every blob of the image (layer, config, manifest) came back byte for byte: the same
            // digests as in the source layout (which also holds umoci's earlier empty image).
            #expect(try layoutBlobs(pulled).count == 3)
            #expect(try layoutBlobs(pulled).isSubset(of: layoutBlobs(layout)))
            for digest in try layoutBlobs(pulled) {
                let hex = String(digest.dropFirst(7))
                let data = try Data(contentsOf: URL(fileURLWithPath: pulled + "/blobs/sha256/" + hex))
                #expect(Digest.of([UInt8](data)).hex == hex)
            }
            let inspect = try await ClusterHarness.run("/usr/bin/skopeo", ["inspect", "--tls-verify=false", "docker://\(registry.hostPort)/team/app:v1"])
            #expect(inspect.output.contains("\"v1\""))

            // The layer (three chunks) and the config (one) are on every member of the group.
            var counts: [UInt64] = []
            let spread = await cluster.eventually(within: 5) {
                counts = (try? await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).snapshot())?.groups.first?.members.map(\.chunkCount) ?? []
                return counts.count == 3 && counts.allSatisfy { $0 >= 4 }
            }
            #expect(spread, "chunk counts per member: \(counts)")
        }

        @Test func chunkedUploadsMountsTagsReferrersAndDeletes() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport)

            // A chunked upload in three PATCHes (sizes not multiples of the chunk size).
            let data = bytes(9_000_001, seed: 1)
            let digest = Digest.of(data)
            let start = try await client.send(.POST, "/v2/chunked/app/blobs/uploads/")
            #expect(start.status == 202)
            var location = try #require(start.headers.first(name: "Location"))
            let parts = [0..<3_000_000, 3_000_000..<5_000_000, 5_000_000..<data.count]
            for (i, part) in parts.enumerated() {
                let patch = try await client.send(
                    .PATCH, location, body: ByteBuffer(bytes: data[part]),
                    headers: [("Content-Range", "\(part.lowerBound)-\(part.upperBound - 1)"), ("Content-Type", "application/octet-stream")])
                #expect(patch.status == 202)
                #expect(patch.headers.first(name: "Range") == "0-\(part.upperBound - 1)")
                location = try #require(patch.headers.first(name: "Location"))
                if i == 0 {
                    // Out of order: the spec's 416, with where the upload really is.
                    let wrong = try await client.send(.PATCH, location, body: ByteBuffer(bytes: [1, 2, 3]), headers: [("Content-Range", "10-12")])
                    #expect(wrong.status == 416)
                    #expect(wrong.headers.first(name: "Range") == "0-2999999")
                }
            }
            let status = try await client.send(.GET, location)
            #expect(status.status == 204)
            #expect(status.headers.first(name: "Range") == "0-\(data.count - 1)")
            let done = try await client.send(.PUT, location + "?digest=\(digest)")
            #expect(done.status == 201)
            #expect(done.headers.first(name: "Docker-Content-Digest") == digest.description)
            let fetched = try await client.send(.GET, "/v2/chunked/app/blobs/\(digest)", limit: 32 << 20)
            #expect(fetched.status == 200)
            #expect(Array(fetched.body.readableBytesView) == data)
            let ranged = try await client.send(.GET, "/v2/chunked/app/blobs/\(digest)", headers: [("Range", "bytes=4194300-4194310")])
            #expect(ranged.status == 206)
            #expect(Array(ranged.body.readableBytesView) == Array(data[4_194_300...4_194_310]))

            // The Docker daemon's way: one PATCH with Transfer-Encoding: chunked, then an empty PUT.
            let streamed = bytes(5_000_000, seed: 2)
            let streamedDigest = Digest.of(streamed)
            let session = try await client.send(.POST, "/v2/chunked/app/blobs/uploads/")
            let sessionURL = try #require(session.headers.first(name: "Location"))
            var request = HTTPClientRequest(url: registry.registryURL + sessionURL)
            request.method = .PATCH
            let pieces = stride(from: 0, to: streamed.count, by: 65_536).map { ByteBuffer(bytes: streamed[$0..<min($0 + 65_536, streamed.count)]) }
            let (body, feed) = AsyncStream<ByteBuffer>.makeStream()
            for piece in pieces { feed.yield(piece) }
            feed.finish()
            request.body = .stream(body, length: .unknown)
            let patched = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            #expect(patched.status.code == 202)
            let finished = try await client.send(.PUT, (patched.headers.first(name: "Location") ?? sessionURL) + "?digest=\(streamedDigest)")
            #expect(finished.status == 201)

            // Cross-repository mount: invisible in another repository until mounted there.
            #expect(try await client.send(.HEAD, "/v2/other/app/blobs/\(digest)").status == 404)
            let mount = try await client.send(.POST, "/v2/other/app/blobs/uploads/?mount=\(digest)&from=chunked/app")
            #expect(mount.status == 201)
            #expect(try await client.send(.HEAD, "/v2/other/app/blobs/\(digest)").status == 200)
            let notMountable = try await client.send(.POST, "/v2/other/app/blobs/uploads/?mount=\(Digest.of([9]))&from=chunked/app")
            #expect(notMountable.status == 202)

            // A manifest, five tags, paged two at a time through the Link header.
            let config = try await pushBlob(client, repo: "chunked/app", Array("{}".utf8))
            let image = manifest(config: config, configSize: 2, layers: [(digest, data.count), (streamedDigest, streamed.count)])
            let imageDigest = Digest.of(image)
            for tag in ["t3", "t0", "T4", "t1", "t2"] {
                let put = try await client.send(.PUT, "/v2/chunked/app/manifests/\(tag)", body: ByteBuffer(bytes: image), headers: [("Content-Type", Self.ociManifest)])
                #expect(put.status == 201)
                #expect(put.headers.first(name: "Docker-Content-Digest") == imageDigest.description)
            }
            var tags: [String] = []
            var next: String? = "/v2/chunked/app/tags/list?n=2"
            var pages = 0
            while let url = next {
                let page = try await client.send(.GET, url)
                #expect(page.status == 200)
                let json = try JSONSerialization.jsonObject(with: Data(page.body.readableBytesView)) as? [String: Any]
                tags += json?["tags"] as? [String] ?? []
                next = page.headers.first(name: "Link").flatMap { link in
                    link.split(separator: ";").first.map { String($0.dropFirst().dropLast()) }
                }
                pages += 1
            }
            #expect(tags == ["t0", "t1", "t2", "t3", "T4"])
            #expect(pages == 3)
            let none = try await client.send(.GET, "/v2/chunked/app/tags/list?n=0")
            #expect(String(buffer: none.body).contains("\"tags\":[]"))
            #expect(none.headers.first(name: "Link") == nil)
            let got = try await client.send(.GET, "/v2/chunked/app/manifests/t1")
            #expect(Array(got.body.readableBytesView) == image)
            #expect(got.headers.first(name: "Content-Type") == Self.ociManifest)

            // Referrers: an artifact whose subject is the image.
            let sbom = manifest(config: config, configSize: 2, layers: [], subject: (imageDigest, image.count), artifactType: "application/example.sbom")
            let sbomPut = try await client.send(.PUT, "/v2/chunked/app/manifests/\(Digest.of(sbom))", body: ByteBuffer(bytes: sbom), headers: [("Content-Type", Self.ociManifest)])
            #expect(sbomPut.status == 201)
            #expect(sbomPut.headers.first(name: "OCI-Subject") == imageDigest.description)
            let referrers = try await client.send(.GET, "/v2/chunked/app/referrers/\(imageDigest)?artifactType=application/example.sbom")
            #expect(referrers.status == 200)
            #expect(referrers.headers.first(name: "OCI-Filters-Applied") == "artifactType")
            #expect(String(buffer: referrers.body).contains(Digest.of(sbom).description))
            let catalog = try await client.send(.GET, "/v2/_catalog")
            #expect(String(buffer: catalog.body).contains("\"chunked/app\""))

            // Deletes: a tag, then the manifest (and its tags), then a blob.
            #expect(try await client.send(.DELETE, "/v2/chunked/app/manifests/t0").status == 202)
            let goneTag = try await client.send(.GET, "/v2/chunked/app/manifests/t0")
            #expect(goneTag.status == 404)
            #expect(errorCode(goneTag.body) == "MANIFEST_UNKNOWN")
            #expect(try await client.send(.GET, "/v2/chunked/app/manifests/t1").status == 200)
            #expect(try await client.send(.DELETE, "/v2/chunked/app/manifests/\(imageDigest)").status == 202)
            #expect(try await client.send(.GET, "/v2/chunked/app/manifests/t1").status == 404)
            #expect(try await client.send(.GET, "/v2/chunked/app/manifests/\(imageDigest)").status == 404)
            #expect(try await client.send(.DELETE, "/v2/chunked/app/blobs/\(digest)").status == 202)
            let goneBlob = try await client.send(.GET, "/v2/chunked/app/blobs/\(digest)")
            #expect(goneBlob.status == 404)
            #expect(errorCode(goneBlob.body) == "BLOB_UNKNOWN")
            #expect(try await client.send(.HEAD, "/v2/other/app/blobs/\(digest)").status == 200)
        }

        @Test func badInputGetsTheSpecsErrorsAndTheServerKeepsServing() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport)
            func expectError(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, headers: [(String, String)] = [], status: Int, code: String?) async throws {
                let reply = try await client.send(method, path, body: body.map { ByteBuffer(bytes: $0) }, headers: headers)
                #expect(reply.status == status, "\(method) \(path): \(reply.status) \(String(buffer: reply.body))")
                #expect(errorCode(reply.body) == code, "\(method) \(path): \(String(buffer: reply.body))")
            }
            let good = Digest.of([1, 2, 3])
            try await expectError(.GET, "/v2/Upper/Case/tags/list", status: 400, code: "NAME_INVALID")
            try await expectError(.GET, "/v2/a/../etc/manifests/latest", status: 400, code: "NAME_INVALID")
            try await expectError(.GET, "/v2/\(String(repeating: "a", count: 300))/tags/list", status: 400, code: "NAME_INVALID")
            try await expectError(.GET, "/v2/app/blobs/sha256:nothex", status: 400, code: "DIGEST_INVALID")
            try await expectError(.GET, "/v2/app/blobs/\(good)", status: 404, code: "BLOB_UNKNOWN")
            try await expectError(.GET, "/v2/app/manifests/latest", status: 404, code: "NAME_UNKNOWN")
            // Neither a tag nor a digest names no manifest (as the reference registry answers); a PUT to one is refused.
            try await expectError(.GET, "/v2/app/manifests/bad..tag!", status: 404, code: "MANIFEST_UNKNOWN")
            try await expectError(.HEAD, "/v2/app/manifests/sha256:nothex", status: 404, code: nil)
            try await expectError(.PUT, "/v2/app/manifests/bad..tag!", body: Array("{}".utf8), headers: [("Content-Type", Self.ociManifest)], status: 400, code: "MANIFEST_INVALID")
            try await expectError(.GET, "/v2/nothing/here/tags/list", status: 404, code: "NAME_UNKNOWN")
            try await expectError(.PATCH, "/v2/app/blobs/uploads/no-such-session", body: [1], status: 404, code: "BLOB_UPLOAD_UNKNOWN")
            // A body whose digest is not the one claimed: refused, and the blob does not appear.
            try await expectError(.POST, "/v2/app/blobs/uploads/?digest=\(good)", body: [9, 9, 9], status: 400, code: "DIGEST_INVALID")
            #expect(try await client.send(.HEAD, "/v2/app/blobs/\(good)").status == 404)
            try await expectError(.POST, "/v2/app/blobs/uploads/?digest=sha256:123", body: [1], status: 400, code: "DIGEST_INVALID")
            // Content-Range promising more than the body holds.
            let session = try #require(try await client.send(.POST, "/v2/app/blobs/uploads/").headers.first(name: "Location"))
            try await expectError(.PATCH, session, body: [1, 2, 3], headers: [("Content-Range", "0-99")], status: 400, code: "SIZE_INVALID")
            // A body cut short of its Content-Length stores nothing.
            let port = Int(registry.hostPort.split(separator: ":").last!)!
            _ = LoopbackSocket.sendRaw(
                port: port, "POST /v2/app/blobs/uploads/?digest=\(good) HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + String(repeating: "z", count: 40))
            #expect(try await client.send(.HEAD, "/v2/app/blobs/\(good)").status == 404)
            // Manifests: one that references a missing blob, one too large, one that is not JSON.
            let missing = manifest(config: good, configSize: 3, layers: [])
            try await expectError(.PUT, "/v2/app/manifests/v1", body: missing, headers: [("Content-Type", Self.ociManifest)], status: 400, code: "MANIFEST_BLOB_UNKNOWN")
            let huge = [UInt8](repeating: UInt8(ascii: " "), count: 5 << 20)
            try await expectError(.PUT, "/v2/app/manifests/v1", body: huge, headers: [("Content-Type", Self.ociManifest)], status: 413, code: "MANIFEST_INVALID")
            try await expectError(.PUT, "/v2/app/manifests/v1", body: Array("{nope".utf8), headers: [("Content-Type", Self.ociManifest)], status: 400, code: "MANIFEST_INVALID")
            let mismatched = Digest.of([7])
            _ = try await pushBlob(client, repo: "app", [1, 2, 3])
            let fine = manifest(config: good, configSize: 3, layers: [])
            try await expectError(.PUT, "/v2/app/manifests/\(mismatched)", body: fine, headers: [("Content-Type", Self.ociManifest)], status: 400, code: "DIGEST_INVALID")
            // Still serving, and the good manifest goes in.
            #expect(try await client.send(.GET, "/v2/").status == 200)
            #expect(try await client.send(.PUT, "/v2/app/manifests/v1", body: ByteBuffer(bytes: fine), headers: [("Content-Type", Self.ociManifest)]).status == 201)
        }

        @Test func readsSurviveCorruptAndDeadReplicasAndWritesFailCleanly() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let client = ServiceClient(baseURL: registry.registryURL, transport: ClusterHarness.transport)
            let data = bytes(10_000_000, seed: 5)
            let digest = try await pushBlob(client, repo: "safe/app", data)

            // Damage the first chunk's bytes on two of the three members, under the running servers.
            for server in registry.chunkservers.prefix(2) {
                let volume = cluster.root + "/\(server.name)/volume-000001.dat"
                let handle = try FileHandle(forUpdating: URL(fileURLWithPath: volume))
                try handle.seek(toOffset: 32 + 1000)
                try handle.write(contentsOf: Data([0xde, 0xad, 0xbe, 0xef]))
                try handle.close()
            }
            for _ in 0..<3 {
                let pulled = try await client.send(.GET, "/v2/safe/app/blobs/\(digest)", limit: 32 << 20)
                #expect(pulled.status == 200)
                #expect(Digest.of(Array(pulled.body.readableBytesView)) == digest)
            }
            // The damage was seen and counted, not served.
            let counted = await cluster.eventually(within: 5) {
                let snapshot = try? await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).snapshot()
                return (snapshot?.groups.first?.members.reduce(0) { $0 + $1.crcErrors } ?? 0) > 0
            }
            #expect(counted)

            // A damaged member dies: the survivors (one good copy of chunk 0) still serve every byte.
            kill(registry.chunkservers[0].process.processIdentifier, SIGKILL)
            await registry.chunkservers[0].process.exited()
            let again = try await client.send(.GET, "/v2/safe/app/blobs/\(digest)", limit: 32 << 20)
            #expect(again.status == 200)
            #expect(Digest.of(Array(again.body.readableBytesView)) == digest)

            // With the group degraded nothing can be written durably to all replicas: a clear 5xx,
            // and the blob does not appear.
            _ = await cluster.eventually(within: 6) {
                (try? await MasterClient(baseURL: registry.masterURL, transport: ClusterHarness.transport).snapshot())?.groups.first?.state == .degraded
            }
            try await Task.sleep(for: .seconds(1.5))
            let other = bytes(100_000, seed: 6)
            let refused = try await client.send(.POST, "/v2/safe/app/blobs/uploads/?digest=\(Digest.of(other))", body: ByteBuffer(bytes: other))
            #expect(refused.status == 507)
            #expect(try await client.send(.HEAD, "/v2/safe/app/blobs/\(Digest.of(other))").status == 404)

            // Many refused multi-chunk pushes must give back every byte of the memory budget they
            // took (96 MiB, 4 MiB a chunk): afterwards reads still get buffers and complete.
            let big = bytes(13_000_000, seed: 7)
            for _ in 0..<30 {
                _ = try? await client.send(.POST, "/v2/safe/app/blobs/uploads/?digest=\(Digest.of(big))", body: ByteBuffer(bytes: big))
            }
            let afterwards = try await ServiceClient(baseURL: registry.registryURL, timeout: .seconds(20), transport: ClusterHarness.transport)
                .send(.GET, "/v2/safe/app/blobs/\(digest)", limit: 32 << 20)
            #expect(afterwards.status == 200)
            #expect(Digest.of(Array(afterwards.body.readableBytesView)) == digest)
        }
    }
}

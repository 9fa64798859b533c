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
    /// The node agent behind real clients (issue 23), each configured exactly as docs/peer.md
    /// shows ("Pointing clients at it"): podman with a `[[registry.mirror]]` in registries.conf,
    /// containerd with a hosts.toml (both name the registry), Docker by the agent's address. The
    /// agent must serve the layers (its metrics say so), and the client must end up with the
    /// registry's image.
    @Suite("Node agent with podman, containerd and Docker", .serialized)
    struct PeerClientTests {
        /// Why podman cannot be used here, or nil.
        static let podmanUnavailable: String? =
            FileManager.default.isExecutableFile(atPath: "/usr/bin/podman") ? nil : "/usr/bin/podman is not installed (.ci/run installs it)"

        /// Why containerd cannot be used here, or nil.
        static let containerdUnavailable: String? = {
            for tool in ["/usr/bin/containerd", "/usr/bin/ctr"] where !FileManager.default.isExecutableFile(atPath: tool) {
                return "\(tool) is not installed (.ci/run installs containerd)"
            }
            return getuid() == 0 ? nil : "containerd needs root"
        }()

        /// Why Docker cannot be used here, or nil.
        static let dockerUnavailable: String? = {
            for tool in ["/usr/sbin/dockerd", "/usr/bin/docker"] where !FileManager.default.isExecutableFile(atPath: tool) {
                return "\(tool) is not installed (apt-get install docker.io)"
            }
            return getuid() == 0 ? nil : "dockerd needs root"
        }()

        /// What a test pulls: the image in the registry and its parts.
        struct Pushed {
            var registry: ClusterHarness.Registry
            var reference: String
            /// The manifest's digest, as the registry serves it.
            var manifest: String
            /// The config's digest (podman's image id).
            var config: String
            var layer: (digest: String, size: Int)
        }

        /// A registry cluster holding `team/app:v1` (a 10 MB layer: three chunks), pushed with skopeo.
        func pushImage(_ cluster: ClusterHarness) async throws -> Pushed {
            let registry = try await cluster.startRegistry()
            let layout = try await cluster.makeImage(named: "app", randomBytes: 10_000_000)
            let reference = "\(registry.hostPort)/team/app:v1"
            let push = try await ClusterHarness.run("/usr/bin/skopeo", ["copy", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://" + reference])
            #expect(push.status == 0, "\(push.output)")
            let accept = ("Accept", "application/vnd.oci.image.manifest.v1+json")
            let reply = try await ServiceClient(baseURL: registry.registryURL, transport: .plain).send(.GET, "/v2/team/app/manifests/v1", headers: [accept])
            let manifest = try #require(reply.headers.first(name: "Docker-Content-Digest"), "\(reply.status)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(reply.body.readableBytesView)) as? [String: Any])
            let config = try #require((json["config"] as? [String: Any])?["digest"] as? String)
            let layers = try #require(json["layers"] as? [[String: Any]])
            let layer = try #require(layers.compactMap { entry in (entry["digest"] as? String).map { ($0, entry["size"] as? Int ?? 0) } }.max { $0.1 < $1.1 })
            return Pushed(registry: registry, reference: reference, manifest: manifest, config: config, layer: layer)
        }

        /// The agent's counters a pull moves.
        struct Counters: CustomStringConvertible {
            var fromChunkservers: Double
            var fromRegistry: Double
            var served: Double
            var misses: Double
            var hits: Double

            init(_ peer: PeerAgentTests.Peer) async throws {
                let tests = PeerAgentTests()
                fromChunkservers = try await tests.metric(peer, "speedy_peer_chunkserver_bytes_total")
                fromRegistry = try await tests.metric(peer, "speedy_peer_imageserver_bytes_total")
                served = try await tests.metric(peer, "speedy_peer_served_bytes_total")
                misses = try await tests.metric(peer, "speedy_peer_cache_misses_total")
                hits = try await tests.metric(peer, "speedy_peer_cache_hits_total")
            }

            var description: String {
                "chunkservers \(Int(fromChunkservers)) B, registry \(Int(fromRegistry)) B, served \(Int(served)) B, misses \(Int(misses)), hits \(Int(hits))"
            }
        }

        /// registries.conf as docs/peer.md shows it: the registry, and the agent as its mirror.
        /// `insecureRegistry` adds `insecure = true` to the registry itself (the test's speaks
        /// plain HTTP), for the fallback when the agent is down.
        static func registriesConf(registry: String, agent: String, insecureRegistry: Bool = false) -> String {
            """
            [[registry]]
            location = "\(registry)"
            \(insecureRegistry ? "insecure = true\n" : "")
            [[registry.mirror]]
            location = "\(agent)"
            insecure = true          # plain HTTP on loopback

            """
        }

        /// podman with the registries.conf of docs/peer.md pulls the registry's image through the
        /// agent: the layer from the chunkservers, then after `rmi` from the agent's cache; with the
        /// agent down it falls back to the registry.
        @Test(.enabled(if: PeerClientTests.podmanUnavailable == nil, "\(PeerClientTests.podmanUnavailable ?? "")"))
        func podmanPullsThroughTheAgentAsItsRegistryMirror() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let image = try await pushImage(cluster)
            let peer = try await PeerAgentTests().startPeer(cluster, registry: image.registry.registryURL)
            // The registry entry as the docs write it, without `insecure`: the test's registry
            // speaks plain HTTP, so podman can only succeed through the mirror.
            let conf = cluster.root + "/registries.conf"
            try Self.registriesConf(registry: image.registry.hostPort, agent: peer.hostPort).write(toFile: conf, atomically: true, encoding: .utf8)
            // podman's own storage in the test's directory; its run root (under 50 characters) and
            // libpod state in a short directory of its own.
            let runRoot = "/tmp/spd-podman-" + UUID().uuidString.prefix(8)
            defer { try? FileManager.default.removeItem(atPath: runRoot) }
            let global = ["--root", cluster.root + "/podman-root", "--runroot", runRoot, "--tmpdir", runRoot + "/libpod", "--storage-driver", "vfs"]
            // An auth file of its own, empty (podman refuses one that does not exist): the host's logins stay out.
            let auth = cluster.root + "/podman-auth.json"
            try "{}\n".write(toFile: auth, atomically: true, encoding: .utf8)
            let environment = ["CONTAINERS_REGISTRIES_CONF": conf, "REGISTRY_AUTH_FILE": auth]
            let podman = { (arguments: [String]) in try await ClusterHarness.run("/usr/bin/podman", global + arguments, environment: environment) }

            let started = ContinuousClock.now
            let pulled = try await podman(["pull", image.reference])
            let took = ContinuousClock.now - started
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.roleLogs(["peer", "imageserver"]))")
            let first = try await Counters(peer)
            // The config and the layer came through the agent, as chunks from the chunkservers;
            // from the registry only the manifest, /v2/ and the chunk maps.
            #expect(first.misses == 2, "\(first)")
            #expect(first.fromChunkservers >= Double(image.layer.size), "\(first)\n\(cluster.log("peer"))")
            #expect(first.fromRegistry < 100_000, "\(first)")
            #expect(first.served >= Double(image.layer.size), "\(first)")
            // podman holds the registry's image, under the registry's name.
            #expect(pulled.output.split(separator: "\n").last.map(String.init) == String(image.config.dropFirst(7)), "\(pulled.output)")
            let inspected = try await podman(["image", "inspect", "--format", "{{.Id}} {{.Digest}}", image.reference])
            #expect(inspected.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(image.config.dropFirst(7)) \(image.manifest)", "\(inspected.output)")
            let listed = try await podman(["image", "ls", "--digests", "--format", "{{.Repository}}:{{.Tag}} {{.Digest}}"])
            #expect(listed.output.contains("\(image.reference) \(image.manifest)"), "\(listed.output)")
            print("peer-clients: podman pull of \(image.reference) (layer \(image.layer.size) B) through the agent in \(took): \(first)")

            // Again after rmi: every blob from the agent's cache, nothing from the chunkservers.
            #expect(try await podman(["rmi", "-a", "-f"]).status == 0)
            let again = try await podman(["pull", image.reference])
            #expect(again.status == 0, "\(again.output)")
            let second = try await Counters(peer)
            #expect(second.hits == first.hits + 2, "\(second)")
            #expect(second.fromChunkservers == first.fromChunkservers, "\(second)")

            // The agent down: podman falls back to the registry (here with `insecure`, as it speaks plain HTTP).
            kill(peer.process.processIdentifier, SIGTERM)
            await peer.process.exited()
            try Self.registriesConf(registry: image.registry.hostPort, agent: peer.hostPort, insecureRegistry: true)
                .write(toFile: conf, atomically: true, encoding: .utf8)
            #expect(try await podman(["rmi", "-a", "-f"]).status == 0)
            let fallback = try await podman(["pull", image.reference])
            #expect(fallback.status == 0, "\(fallback.output)")
            #expect(try await podman(["image", "inspect", "--format", "{{.Digest}}", image.reference]).output.contains(image.manifest))
            _ = try await podman(["rmi", "-a", "-f"])
        }

        /// A containerd of the test's own: private root and state, its socket in a short directory
        /// under /tmp, the CRI plugin (and what needs more than this host) off.
        struct Containerd {
            var socket: String
            var process: Process
            /// The short directory holding the socket and the state; removed by ``stop()``.
            var runDirectory: String

            /// SIGTERM to our containerd (by its PID), a SIGKILL if it lingers; then its directory goes.
            func stop() {
                let runDirectory = runDirectory
                process.stop(grace: 10) { try? FileManager.default.removeItem(atPath: runDirectory) }
            }
        }

        /// Starts containerd with a minimal config; returns once it answers on its socket.
        func startContainerd(_ cluster: ClusterHarness) async throws -> Containerd {
            let run = "/tmp/spd-ctd-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let socket = run + "/containerd.sock"
            let config = cluster.root + "/containerd.toml"
            let unused = ["grpc.v1.cri", "internal.v1.opt", "snapshotter.v1.aufs", "snapshotter.v1.btrfs", "snapshotter.v1.devmapper", "snapshotter.v1.zfs"]
            try """
                version = 2
                root = "\(cluster.root)/containerd-root"
                state = "\(run)/state"
                disabled_plugins = [\(unused.map { "\"io.containerd.\($0)\"" }.joined(separator: ", "))]

                [grpc]
                  address = "\(socket)"

                """.write(toFile: config, atomically: true, encoding: .utf8)
            let process = try cluster.start("containerd", ["--config", config], program: "/usr/bin/containerd")
            let daemon = Containerd(socket: socket, process: process, runDirectory: run)
            let ready = await cluster.eventually(within: 20) { (try? await ClusterHarness.run("/usr/bin/ctr", ["--address", socket, "version"]))?.status == 0 }
            guard ready else {
                daemon.stop()
                throw HarnessError("containerd did not come up:\n\(cluster.log("containerd"))")
            }
            return daemon
        }

        /// containerd with the hosts.toml of docs/peer.md (`ctr images pull --hosts-dir`) pulls
        /// the registry's image through the agent.
        @Test(.enabled(if: PeerClientTests.containerdUnavailable == nil, "\(PeerClientTests.containerdUnavailable ?? "")"))
        func containerdPullsThroughTheAgentWithHostsToml() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let image = try await pushImage(cluster)
            let peer = try await PeerAgentTests().startPeer(cluster, registry: image.registry.registryURL)
            let containerd = try await startContainerd(cluster)
            defer { containerd.stop() }
            // certs.d/<registry host:port>/hosts.toml, as docs/peer.md writes it (the test's registry is plain HTTP).
            let hostsDirectory = cluster.root + "/certs.d"
            try FileManager.default.createDirectory(atPath: hostsDirectory + "/" + image.registry.hostPort, withIntermediateDirectories: true)
            try """
                server = "\(image.registry.registryURL)"

                [host."\(peer.url)"]
                  capabilities = ["pull", "resolve"]

                """.write(toFile: hostsDirectory + "/\(image.registry.hostPort)/hosts.toml", atomically: true, encoding: .utf8)
            let ctr = { (arguments: [String]) in try await ClusterHarness.run("/usr/bin/ctr", ["--address", containerd.socket] + arguments) }

            let started = ContinuousClock.now
            // The native snapshotter unpacks anywhere (overlayfs may not nest in a container).
            let pulled = try await ctr(["images", "pull", "--hosts-dir", hostsDirectory, "--snapshotter", "native", image.reference])
            let took = ContinuousClock.now - started
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.roleLogs(["peer", "imageserver", "containerd"]))")
            let counters = try await Counters(peer)
            #expect(counters.misses == 2, "\(counters)")
            #expect(counters.fromChunkservers >= Double(image.layer.size), "\(counters)\n\(cluster.log("peer"))")
            #expect(counters.fromRegistry < 100_000, "\(counters)")
            #expect(counters.served >= Double(image.layer.size), "\(counters)")
            // containerd holds the registry's image under its name, and the layer.
            let listed = try await ctr(["images", "ls"])
            let line = listed.output.split(separator: "\n").first { $0.hasPrefix(image.reference + " ") }
            #expect(line?.contains(image.manifest) == true, "\(listed.output)")
            let content = try await ctr(["content", "ls", "--quiet"])
            #expect(content.output.contains(image.layer.digest), "\(content.output)")
            print("peer-clients: containerd pull of \(image.reference) (layer \(image.layer.size) B) through the agent in \(took): \(counters)")
        }

        /// A dockerd of the test's own (it starts and stops a managed containerd of its own):
        /// data root in the test's directory, exec root, pid file and socket in a short directory
        /// under /tmp; no iptables, no bridge, the vfs storage driver. The host's Docker is untouched.
        @Test(.enabled(if: PeerClientTests.dockerUnavailable == nil, "\(PeerClientTests.dockerUnavailable ?? "")"))
        func dockerPullsThroughTheAgentByItsAddress() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let image = try await pushImage(cluster)
            let peer = try await PeerAgentTests().startPeer(cluster, registry: image.registry.registryURL)
            let run = "/tmp/spd-dk-" + UUID().uuidString.prefix(8)
            try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let socket = "unix://\(run)/docker.sock"
            let dockerd = try cluster.start("dockerd", [
                "--data-root", cluster.root + "/docker", "--exec-root", run + "/exec", "--pidfile", run + "/docker.pid",
                "-H", socket, "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver", "vfs",
            ], program: "/usr/sbin/dockerd")
            defer {
                // SIGTERM to our dockerd (by its PID; it stops its managed containerd), a SIGKILL if it lingers.
                let docker = cluster.root + "/docker"
                dockerd.stop {
                    try? FileManager.default.removeItem(atPath: run)
                    try? FileManager.default.removeItem(atPath: docker)
                }
            }
            // No client config of the host's: an empty config directory of the test's own.
            let config = cluster.root + "/docker-config"
            try FileManager.default.createDirectory(atPath: config, withIntermediateDirectories: true)
            let docker = { (arguments: [String]) in try await ClusterHarness.run("/usr/bin/docker", ["--config", config, "-H", socket] + arguments) }
            let ready = await cluster.eventually(within: 30) { (try? await docker(["info"]))?.status == 0 }
            try #require(ready, "dockerd did not come up:\n\(cluster.log("dockerd"))")

            // As docs/peer.md says: by the agent's address (127.0.0.1, which Docker treats as insecure).
            let reference = "\(peer.hostPort)/team/app:v1"
            let started = ContinuousClock.now
            let pulled = try await docker(["pull", reference])
            let took = ContinuousClock.now - started
            #expect(pulled.status == 0, "\(pulled.output)\n\(cluster.roleLogs(["peer", "imageserver", "dockerd"]))")
            let counters = try await Counters(peer)
            #expect(counters.misses == 2, "\(counters)")
            #expect(counters.fromChunkservers >= Double(image.layer.size), "\(counters)\n\(cluster.log("peer"))")
            #expect(counters.fromRegistry < 100_000, "\(counters)")
            #expect(counters.served >= Double(image.layer.size), "\(counters)")
            // Docker holds the registry's image: its id the config's digest, its RepoDigest the manifest's.
            let inspected = try await docker(["image", "inspect", "--format", "{{.Id}}{{range .RepoDigests}} {{.}}{{end}}", reference])
            #expect(inspected.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(image.config) \(peer.hostPort)/team/app@\(image.manifest)", "\(inspected.output)")
            print("peer-clients: docker pull of \(reference) (layer \(image.layer.size) B) through the agent in \(took): \(counters)")
        }
    }
}

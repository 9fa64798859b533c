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
    /// A real master and chunkservers, as separate processes on loopback.
    @Suite("Cluster on loopback", .serialized)
    struct ClusterTests {
        @Test func masterAndThreeChunkserversStoreServeAndRecover() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let (masterURL, masterProcess) = try cluster.startMaster()
            var servers: [(name: String, addr: String, process: Process)] = []
            for i in 1...3 {
                let (addr, process) = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs\(i)")
                servers.append(("cs\(i)", addr, process))
            }
            let master = MasterClient(baseURL: masterURL, transport: ClusterHarness.transport)
            let healthy = await cluster.eventually(within: 20) {
                guard let snapshot = try? await master.snapshot() else { return false }
                return snapshot.groups.first?.state == .healthy && snapshot.groups.first?.members.count == 3
            }
            #expect(healthy, "group never became healthy; master log:\n\(cluster.log("master"))")
            guard healthy else { return }

            // Write one 4 MiB chunk to every member under a leased file id, read it back from each.
            let lease = try await master.leaseFileIds(count: 10)
            #expect(lease.count == 10)
            let key = ChunkKey(group: 1, fileId: lease.start)
            var bytes = [UInt8](repeating: 0, count: 4 << 20)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
            let data = ByteBuffer(bytes: bytes)
            for server in servers {
                let info = try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).put(key, data: data)
                #expect(info.length == 4 << 20)
                #expect(info.crc == CRC32C.checksum(data))
            }
            for server in servers {
                #expect(try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).get(key) == data)
            }
            let listing = try await ChunkServerClient(baseURL: servers[0].addr, transport: ClusterHarness.transport).list(group: 1)
            #expect(listing.chunks.map(\.fileId) == [key.fileId])

            // Bad input gets a clear 4xx and stores nothing; the server keeps serving.
            let raw = ServiceClient(baseURL: servers[0].addr, transport: ClusterHarness.transport)
            let wrongCRC = try await raw.send(.PUT, "/v1/chunks/1/\(lease.start + 1)", body: ByteBuffer(string: "hello"), headers: [(SpeedyHeader.crc32c, "00000001")])
            #expect(wrongCRC.status == 400)
            #expect(String(buffer: wrongCRC.body).contains("CHECKSUM_MISMATCH"))
            let wrongGroup = try await raw.send(.PUT, "/v1/chunks/9/\(lease.start + 1)", body: ByteBuffer(string: "hello"))
            #expect(wrongGroup.status == 404)
            #expect(String(buffer: wrongGroup.body).contains("GROUP_UNKNOWN"))
            let tooLarge = try await raw.send(.PUT, "/v1/chunks/1/\(lease.start + 2)", body: ByteBuffer(repeating: 1, count: (16 << 20) + 1))
            #expect(tooLarge.status == 413)
            #expect(String(buffer: tooLarge.body).contains("CHUNK_TOO_LARGE"))
            let range = try await raw.send(.GET, "/v1/chunks/1/\(key.fileId)", headers: [("Range", "bytes=100-199")])
            #expect(range.status == 206)
            #expect(Array(range.body.readableBytesView) == Array(bytes[100...199]))
            // A body shorter than its Content-Length (the client gives up half-way) stores nothing.
            let port0 = Int(servers[0].addr.split(separator: ":").last!)!
            _ = LoopbackSocket.sendRaw(
                port: port0,
                "PUT /v1/chunks/1/\(lease.start + 3) HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + String(repeating: "a", count: 50))
            let head = try await raw.send(.HEAD, "/v1/chunks/1/\(lease.start + 3)")
            #expect(head.status == 404)
            #expect(try await ChunkServerClient(baseURL: servers[0].addr, transport: ClusterHarness.transport).list(group: 1).chunks.count == 1)

            // The writes show up in the master's per-second throughput history of every member.
            let sawWrites = await cluster.eventually(within: 5) {
                guard let snapshot = try? await master.snapshot(historySeconds: 60) else { return false }
                return snapshot.groups[0].members.allSatisfy { ($0.history?.writeBytesPerSec.max() ?? 0) > 0 }
            }
            #expect(sawWrites)

            // chunktool status --json carries the documented fields.
            let status = try await cluster.chunktool(["status", "--json", "--master", masterURL])
            #expect(status.status == 0)
            let json = try JSONSerialization.jsonObject(with: Data(status.output.utf8)) as? [String: Any]
            let group = (json?["groups"] as? [[String: Any]])?.first
            #expect(group?["id"] as? Int == 1)
            #expect(group?["state"] as? String == "healthy")
            let members = group?["members"] as? [[String: Any]] ?? []
            #expect(members.count == 3)
            for member in members {
                for field in ["id", "addr", "status", "diskTotalBytes", "diskUsedBytes", "readBytesPerSec", "writeBytesPerSec", "lastHeartbeatAgeMs"] {
                    #expect(member[field] != nil, "member lacks \(field)")
                }
                #expect(member["status"] as? String == "RW")
            }
            let people = try await cluster.chunktool(["status"], environment: ["SPEEDY_MASTER": masterURL])
            #expect(people.status == 0)
            #expect(people.output.contains("healthy") && people.output.contains(servers[2].addr))

            // kill -9 a member: the master marks it down and the group degraded.
            kill(servers[1].process.processIdentifier, SIGKILL)
            await servers[1].process.exited()
            let degraded = await cluster.eventually(within: 6) {
                (try? await master.snapshot())?.groups.first?.state == .degraded
            }
            #expect(degraded)
            let degradedStatus = try await cluster.chunktool(["status", "--json", "--master", masterURL])
            #expect(degradedStatus.status == 1)
            #expect(degradedStatus.output.contains("\"DOWN\""))

            // Restarted on the same data (no checkpoint since the crash), it has the chunk and rejoins.
            let port = Int(servers[1].addr.split(separator: ":").last!)!
            _ = try cluster.startChunkserver(master: masterURL, group: 1, name: "cs2", port: port)
            let rejoined = await cluster.eventually(within: 20) {
                (try? await master.snapshot())?.groups.first?.state == .healthy
            }
            #expect(rejoined, "cs2 log:\n\(cluster.log("cs2"))")
            #expect(try await ChunkServerClient(baseURL: servers[1].addr, transport: ClusterHarness.transport).get(key) == data)
            let events = try await master.events()
            #expect(events.contains { $0.kind == "server-down" && $0.serverId == "cs2" })
            #expect(events.contains { $0.kind == "server-up" && $0.serverId == "cs2" })

            // With the master gone, chunktool says it could not run.
            kill(masterProcess.processIdentifier, SIGTERM)
            await masterProcess.exited()
            #expect(try await cluster.chunktool(["status", "--master", masterURL]).status == 2)
            #expect(try await cluster.chunktool(["status", "--bogus"]).status == 2)
        }

        @Test func speedyUpStartsAClusterKeepsDataAndStopsCleanly() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            // The master's port, six chunkservers' in a row, the metaserver's and the registry's.
            let masterPort = TestPorts.freeRun(count: 9)
            let firstPort = masterPort + 1
            let masterURL = "http://127.0.0.1:\(masterPort)"
            let args = [
                "up", "--data", cluster.root + "/cluster", "--groups", "2", "--replicas", "3",
                "--master-port", String(masterPort), "--chunkserver-port", String(firstPort), "--meta-port", String(masterPort + 7),
                "--registry-port", String(masterPort + 8), "--volume-size", "64M", "--reserve", "0",
            ]
            var up = try cluster.start("up", args)
            // `speedy up` makes its own secret, readable by its owner only, and the internal
            // APIs refuse requests without it.
            let secretPath = cluster.root + "/cluster/cluster-secret"
            #expect(await cluster.eventually(within: 10) { FileManager.default.fileExists(atPath: secretPath) })
            let secret = try ClusterSecret.load(path: secretPath)
            let mode = try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            // Under `speedy up` each role has its own secret and a role table: DATA/cluster-secret
            // is the operator's, and only the credentials derived from it are taken.
            var operatorTransport = ClusterTransport(secret: secret)
            operatorTransport.boundCredentials = true
            let master = MasterClient(baseURL: masterURL, transport: operatorTransport)
            func allHealthy() async -> Bool {
                guard let snapshot = try? await master.snapshot() else { return false }
                return snapshot.groups.count == 2 && snapshot.groups.allSatisfy { $0.state == .healthy && $0.members.count == 3 }
            }
            #expect(await cluster.eventually(within: 30, allHealthy), "speedy up log:\n\(cluster.log("up"))")
            // The banner comes once the registry can take a push.
            #expect(await cluster.eventually(within: 20) { cluster.log("up").contains("chunkmaster   \(masterURL)") }, "\(cluster.log("up"))")
            #expect(cluster.log("up").contains("Speedy is up"))

            let anonymous = try await ServiceClient(baseURL: masterURL, transport: .plain).send(.GET, "/v1/cluster")
            #expect(anonymous.status == 401)
            // The operator's secret itself is not taken; the tools, run with it, find the table
            // beside it and send credentials.
            let raw = try await ServiceClient(baseURL: masterURL, transport: ClusterTransport(secret: secret)).send(.GET, "/v1/cluster")
            #expect(raw.status == 401)
            let status = try await cluster.chunktool(["status", "--master", masterURL], environment: ["SPEEDY_CLUSTER_SECRET_FILE": secretPath])
            #expect(status.status == 0, "\(status.output)")
            for role in ["chunkmaster", "chunkserver", "metaserver", "imageserver", "operator"] {
                let file = role == "operator" ? secretPath : cluster.root + "/cluster/credentials/\(role).secret"
                #expect(FileManager.default.fileExists(atPath: file), "\(file)")
            }

            // Group 2's first member is the fourth port.
            let key = ChunkKey(group: 2, fileId: 77)
            let member = ChunkServerClient(baseURL: "127.0.0.1:\(firstPort + 3)", transport: operatorTransport)
            _ = try await member.put(key, data: ByteBuffer(string: "kept across restarts"))

            // A role that dies is restarted by `speedy up`, which says so.
            let memberPID = try #require(ClusterHarness.pid(listeningOn: firstPort + 3))
            kill(memberPID, SIGKILL)
            #expect(await cluster.eventually(within: 20) { cluster.log("up").contains("g2-cs1 restarted") }, "\(cluster.log("up"))")
            #expect(await cluster.eventually(within: 20) { (try? await member.get(key)).map { String(buffer: $0) } == "kept across restarts" })

            kill(up.processIdentifier, SIGTERM)
            await up.exited()
            // Every child is gone: nothing answers on the master's port or any chunkserver's.
            #expect(!(await master.isHealthy()))
            for port in firstPort..<(firstPort + 6) {
                #expect((try? await ServiceClient(baseURL: "127.0.0.1:\(port)", timeout: .seconds(1), transport: ClusterHarness.transport).send(.GET, "/v1/health")) == nil)
            }

            up = try cluster.start("up", args)
            #expect(await cluster.eventually(within: 60, allHealthy), "speedy up log after the restart:\n\(cluster.log("up"))")
            #expect(String(buffer: try await member.get(key)) == "kept across restarts")
            kill(up.processIdentifier, SIGTERM)
            await up.exited()
            #expect(up.terminationStatus == 0)
        }
    }
}

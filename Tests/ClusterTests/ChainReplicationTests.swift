import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SpeedyClients
import SpeedyCore
import Testing
import SpeedyTestSupport

extension ProcessSuites {
    /// Chain replication on real processes: the imageserver sends each chunk once, every member
    /// ends up with it, and a chain that breaks anywhere leaves no copy behind.
    @Suite("Chain replication", .serialized)
    struct ChainReplicationTests {
        /// Bytes a process has written through write(2) and writev(2), sockets included.
        static func bytesWritten(pid: Int32) -> UInt64? {
            guard let handle = FileHandle(forReadingAtPath: "/proc/\(pid)/io") else { return nil }
            defer { try? handle.close() }
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            for line in text.split(separator: "\n") where line.hasPrefix("wchar:") {
                return UInt64(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
            }
            return nil
        }

        func bytes(_ count: Int, seed: UInt8) -> [UInt8] {
            TestBytes.random(count, seed: Int(seed))
        }

        @Test func theImageserverSendsEachChunkOnceAndEveryMemberStoresIt() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let port = Int(registry.hostPort.split(separator: ":")[1])!
            let imageserver = try #require(ClusterHarness.pid(listeningOn: port))
            let members = try registry.chunkservers.map { try #require(ClusterHarness.pid(listeningOn: Int($0.addr.split(separator: ":")[1])!)) }
            let membersBefore = members.map { Self.bytesWritten(pid: $0) ?? 0 }
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(60), transport: ClusterHarness.transport)
            let data = bytes(24 << 20, seed: 3)
            let digest = Digest.of(data)

            let before = try #require(Self.bytesWritten(pid: imageserver))
            let pushed = try await client.send(.POST, "/v2/chain/app/blobs/uploads/?digest=\(digest)", body: ByteBuffer(bytes: data))
            #expect(pushed.status == 201, "\(String(buffer: pushed.body))")
            let sent = try #require(Self.bytesWritten(pid: imageserver)) - before
            // Fan-out would send 72 MiB (three copies); a chain sends 24 MiB and a little HTTP.
            #expect(sent >= UInt64(data.count) && sent < UInt64(data.count) * 5 / 4, "imageserver wrote \(sent) bytes for a \(data.count)-byte blob")

            // Every member holds all six chunks with the same CRCs.
            var listings: [[UInt64: ChunkInfo]] = []
            for server in registry.chunkservers {
                listings.append(try await ChunkServerClient(baseURL: server.addr, transport: ClusterHarness.transport).listAll(group: 1))
            }
            #expect(listings[0].count == 6)
            #expect(listings.allSatisfy { $0.mapValues(\.crc) == listings[0].mapValues(\.crc) })

            // Heads rotate with the file id: each member headed two of the six chunks, was second
            // for two and last for two, so each wrote the blob to disk (24 MiB) and passed on
            // four chunks (16 MiB). With a fixed head two members would pass on 24 MiB, one none.
            for (i, pid) in members.enumerated() {
                let wrote = (Self.bytesWritten(pid: pid) ?? 0) - membersBefore[i]
                #expect(wrote > 38 << 20 && wrote < 44 << 20, "\(registry.chunkservers[i].name) wrote \(wrote) bytes")
            }
            let pulled = try await client.send(.GET, "/v2/chain/app/blobs/\(digest)", limit: 32 << 20)
            #expect(Digest.of(Array(pulled.body.readableBytesView)) == digest)
        }

        @Test func aChainThatBreaksAnywhereLeavesNoCopy() async throws {
            let cluster = ClusterHarness()
            defer { cluster.shutdown() }
            let registry = try await cluster.startRegistry()
            let (cs1, cs2, cs3) = (registry.chunkservers[0].addr, registry.chunkservers[1].addr, registry.chunkservers[2].addr)
            let data = ByteBuffer(bytes: bytes(1 << 20, seed: 9))
            let crc = CRC32C.checksum(data)
            func held(_ fileId: UInt64) async -> [Bool] {
                var found: [Bool] = []
                for addr in [cs1, cs2, cs3] {
                    let reply = try? await ServiceClient(baseURL: addr, transport: ClusterHarness.transport).send(.HEAD, "/v1/chunks/1/\(fileId)")
                    found.append(reply?.status == 200)
                }
                return found
            }

            // A whole chain: three copies, reported by the head.
            let whole = try await ChunkServerClient(baseURL: cs1, transport: ClusterHarness.transport).put(ChunkKey(group: 1, fileId: 1_000_001), data: data, crc: crc, onTo: [cs2, cs3])
            #expect(whole.replicas == 3)
            #expect(await held(1_000_001) == [true, true, true])

            // Cleaning up a failed write names the CRC it wrote: other bytes under the key stay.
            let stored = ChunkKey(group: 1, fileId: 1_000_001)
            await #expect(throws: ServiceError.self) { try await ChunkServerClient(baseURL: cs2, transport: ClusterHarness.transport).delete(stored, ifCRC: crc ^ 1) }
            #expect(await held(1_000_001) == [true, true, true])
            try await ChunkServerClient(baseURL: cs2, transport: ClusterHarness.transport).delete(stored, ifCRC: crc)
            #expect(await held(1_000_001) == [true, false, true])

            // A chain naming a host that is not a member is refused before a byte is stored or sent.
            let unreachable = "127.0.0.1:\(ClusterHarness.freePort())"
            await #expect(throws: ServiceError.self) {
                try await ChunkServerClient(baseURL: cs1, transport: ClusterHarness.transport).put(ChunkKey(group: 1, fileId: 1_000_002), data: data, crc: crc, onTo: [cs2, unreachable])
            }
            let stranger = try await ServiceClient(baseURL: cs1, transport: ClusterHarness.transport).send(
                .PUT, "/v1/chunks/1/1000003", body: data,
                headers: [(SpeedyHeader.crc32c, CRCFormat.hex(crc)), (SpeedyHeader.chain, "\(cs2),\(unreachable)")])
            #expect(stranger.status == 403)
            #expect(String(buffer: stranger.body).contains("\(unreachable), not a member of group 1"), "\(String(buffer: stranger.body))")
            #expect(await held(1_000_002) == [false, false, false])
            #expect(await held(1_000_003) == [false, false, false])

            // A wrong CRC is refused by every member, the head included.
            let wrong = try await ServiceClient(baseURL: cs1, transport: ClusterHarness.transport).send(
                .PUT, "/v1/chunks/1/1000004", body: data,
                headers: [(SpeedyHeader.crc32c, CRCFormat.hex(crc ^ 1)), (SpeedyHeader.chain, "\(cs2),\(cs3)")])
            #expect(wrong.status == 400)
            #expect(await held(1_000_004) == [false, false, false])

            // Another role's address is no member either.
            let g2 = try await ServiceClient(baseURL: cs1, transport: ClusterHarness.transport).send(
                .PUT, "/v1/chunks/1/1000005", body: data,
                headers: [(SpeedyHeader.crc32c, CRCFormat.hex(crc)), (SpeedyHeader.chain, "\(cs2),\(registry.masterURL.replacingOccurrences(of: "http://", with: ""))")])
            #expect(g2.status == 403)
            #expect(await held(1_000_005) == [false, false, false])

            // Malformed chains are refused before any byte is stored.
            for header in ["\(cs2),\(cs2)", "http://\(cs2)", "\(cs2),", "a:0", String(repeating: "\(cs2),", count: 9) + cs3, "user@\(cs2)"] {
                let reply = try await ServiceClient(baseURL: cs1, transport: ClusterHarness.transport).send(
                    .PUT, "/v1/chunks/1/1000006", body: data, headers: [(SpeedyHeader.crc32c, CRCFormat.hex(crc)), (SpeedyHeader.chain, header)])
                #expect(reply.status == 400, "chain '\(header)' answered \(reply.status)")
            }
            #expect(await held(1_000_006) == [false, false, false])
            // Without the cluster secret nobody can ask a chunkserver to forward anything.
            let anonymous = try await ServiceClient(baseURL: cs1, transport: .plain).send(
                .PUT, "/v1/chunks/1/1000007", body: data, headers: [(SpeedyHeader.chain, cs2)])
            #expect(anonymous.status == 401)

            // The last member is down: both members before it drop their copies.
            registry.chunkservers[2].process.stop(signal: SIGKILL) {}
            #expect(await cluster.eventually(within: 10) { !registry.chunkservers[2].process.isRunning })
            let broken = try await ServiceClient(baseURL: cs1, transport: ClusterHarness.transport).send(
                .PUT, "/v1/chunks/1/1000008", body: data,
                headers: [(SpeedyHeader.crc32c, CRCFormat.hex(crc)), (SpeedyHeader.chain, "\(cs2),\(cs3)")])
            #expect(broken.status == 502, "\(String(buffer: broken.body))")
            #expect((try? WireJSON.decoder().decode(ErrorBody.self, from: broken.body))?.code == "CHAIN_FAILED")
            #expect(await held(1_000_008) == [false, false, false])
        }
    }
}

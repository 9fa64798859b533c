import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension ProcessSuites {
    /// docs/security.md's runbook, "Rotating secrets", on a running cluster under push load: the
    /// cluster secret goes from old to new in three SIGHUPs without a refused request or a lost blob.
    @Suite("Secret rotation", .serialized)
    struct SecretRotationTests {
        static let roles = ["master", "cs1", "cs2", "cs3", "meta", "imageserver", "tracker"]

        /// Writes the secret file (as the runbook says: whole lines, renamed into place), sends
        /// SIGHUP to every role, and waits until each has logged its `step`-th re-read.
        func rotate(_ cluster: ClusterHarness, to lines: [ClusterSecret], step: Int) async throws {
            try SecretFile.write(lines.map(\.value).joined(separator: "\n") + "\n", to: ClusterHarness.secretFile)
            cluster.hangUp()
            try ClusterHarness.transport.secrets?.reload()
            let reread = await cluster.eventually(within: 15) {
                Self.roles.allSatisfy { cluster.log($0).components(separatedBy: "re-read the cluster secret file").count - 1 >= step }
            }
            #expect(reread, "step \(step): not every role re-read the file\n\(cluster.roleLogs(Self.roles, lines: 10))")
        }

        @Test func theClusterSecretRotatesUnderPushLoadWithNothingRefusedOrLost() async throws {
            let cluster = ClusterHarness(roles: false)
            let original = try String(contentsOfFile: ClusterHarness.secretFile, encoding: .utf8)
            defer {
                cluster.shutdown()
                // Later tests start their clusters with the file as it was.
                try? SecretFile.write(original, to: ClusterHarness.secretFile)
                try? ClusterHarness.transport.secrets?.reload()
            }
            let old = try ClusterSecret.load(path: ClusterHarness.secretFile)
            let new = ClusterSecret.generate()
            let registry = try await cluster.startRegistry()
            // A tracker too: its /metrics asks for the cluster secret.
            let peerSecret = cluster.root + "/peer.secret"
            try SecretFile.write(ClusterSecret.generate().value + "\n", to: peerSecret)
            let trackerPort = ClusterHarness.freePort()
            try cluster.start(
                "tracker", ["tracker", "--listen", "127.0.0.1:\(trackerPort)", "--peer-secret-file", peerSecret, "--master", registry.masterURL])
            let tracker = "http://127.0.0.1:\(trackerPort)"
            #expect(await cluster.eventually(within: 20) {
                (try? await ServiceClient(baseURL: tracker, transport: .plain).send(.GET, "/readyz"))?.status == 200
            }, "\(cluster.log("tracker"))")

            // Pushes of 1 MiB blobs for the whole rotation, and some time on either side of it.
            let deadline = ContinuousClock.now + .seconds(30)
            let load = Task { await MetaserverFailoverTests.pushLoad(registry.registryURL, seed: 41, size: 1 << 20, until: deadline) }
            try await Task.sleep(for: .seconds(2))
            try await rotate(cluster, to: [old, new], step: 1)  // everyone accepts both, sends the old
            try await Task.sleep(for: .seconds(2))
            try await rotate(cluster, to: [new, old], step: 2)  // everyone sends the new
            try await Task.sleep(for: .seconds(2))
            try await rotate(cluster, to: [new], step: 3)  // only the new is accepted
            let rotated = ContinuousClock.now
            #expect(rotated < deadline - .seconds(2), "the rotation outlasted the load")
            let outcomes = await load.value

            let refused = outcomes.filter { $0.status != 201 }
            #expect(refused.isEmpty, "pushes refused during the rotation: \(refused.prefix(5).map { "\($0.status)" })\n\(cluster.roleLogs(Self.roles))")
            #expect(outcomes.filter { $0.at > rotated }.count >= 3, "pushes after the rotation")
            #expect(outcomes.count >= 20, "only \(outcomes.count) pushes")

            // Nothing acknowledged is lost: every blob comes back whole.
            let client = ServiceClient(baseURL: registry.registryURL, timeout: .seconds(20), transport: .plain)
            for outcome in outcomes where outcome.status == 201 {
                let reply = try await client.send(.GET, "/v2/\(outcome.repository)/blobs/\(outcome.digest)", limit: 2 << 20)
                #expect(reply.status == 200 && Digest.of(Array(reply.body.readableBytesView)) == outcome.digest, "\(outcome.digest)")
            }

            // The old secret opens nothing now; the new one everything.
            let internalURLs = [registry.masterURL, registry.metaURL, tracker] + registry.chunkservers.map { "http://" + $0.addr }
            for url in internalURLs {
                // /metrics: every role's, the tracker's included, asks for the cluster secret.
                let withOld = try await ServiceClient(baseURL: url, transport: ClusterHarness.transport.with(secret: old)).send(.GET, "/metrics")
                let withNew = try await ServiceClient(baseURL: url, transport: ClusterHarness.transport.with(secret: new)).send(.GET, "/metrics")
                #expect(withOld.status == 401, "\(url) with the old secret: \(withOld.status)")
                #expect(withNew.status == 200, "\(url) with the new secret: \(withNew.status)")
            }
            let status = try await cluster.chunktool(["status", "--json", "--master", registry.masterURL])
            #expect(status.status == 0, "chunktool with the new secret: \(status.output)")
        }

        /// The SHA-256 fingerprint of the certificate in `file`, or of the one served on `port`.
        static func fingerprint(file: String? = nil, port: Int? = nil) async throws -> String {
            let command = file.map { "openssl x509 -in \($0) -noout -fingerprint -sha256" }
                ?? "openssl s_client -connect 127.0.0.1:\(port!) </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"
            return try await ClusterHarness.run("/bin/sh", ["-c", command], errors: .discarded).output
        }

        /// A renewed certificate is served to new connections after SIGHUP, while clients that
        /// trust its CA keep connecting without one refusal; a certificate and key that do not
        /// belong together are refused and the certificate served stays.
        @Test func aRenewedCertificateIsServedAfterSIGHUPWithoutRefusingAConnection() async throws {
            let cluster = ClusterHarness(roles: false)
            defer { cluster.shutdown() }
            let root = cluster.root
            // The renewal docs/security.md describes: the same CA, a new server certificate.
            let first = try LocalCertificateAuthority.make(publicDirectory: root + "/tls", privateDirectory: root + "/tls/private")
            try FileManager.default.moveItem(atPath: first.serverCertificate, toPath: root + "/first.crt")
            try FileManager.default.moveItem(atPath: first.serverKey, toPath: root + "/first.key")
            let caBefore = try String(contentsOfFile: first.caCertificate, encoding: .utf8)
            let second = try LocalCertificateAuthority.make(publicDirectory: root + "/tls", privateDirectory: root + "/tls/private")
            #expect(try String(contentsOfFile: second.caCertificate, encoding: .utf8) == caBefore, "the CA stays")
            let (firstCertificate, firstKey) = (root + "/first.crt", root + "/first.key")
            let bundle = second.caCertificate
            func install(_ certificate: String, _ key: String) throws {
                try SecretFile.write(String(contentsOfFile: key, encoding: .utf8), to: root + "/tls.key")
                try SecretFile.write(String(contentsOfFile: certificate, encoding: .utf8), to: root + "/tls.crt")
            }
            try install(firstCertificate, firstKey)
            let (url, _) = try cluster.startMaster(arguments: ["--tls-cert", root + "/tls.crt", "--tls-key", root + "/tls.key"])
            let port = try #require(URL(string: url)?.port)
            let firstPrint = try await Self.fingerprint(file: firstCertificate)
            let secondPrint = try await Self.fingerprint(file: second.serverCertificate)
            #expect(firstPrint.contains("Fingerprint") && firstPrint != secondPrint)
            #expect(await cluster.eventually(within: 20) { (try? await Self.fingerprint(port: port)) == firstPrint }, "\(cluster.log("master"))")

            // Clients that verify the certificate, one connection each, through the renewal.
            let deadline = ContinuousClock.now + .seconds(8)
            let load = Task {
                var outcomes: [Int32] = []
                while ContinuousClock.now < deadline, outcomes.count < 2000 {
                    let reply = try? await ClusterHarness.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "--cacert", bundle, "https://127.0.0.1:\(port)/healthz"])
                    outcomes.append(reply?.status ?? -1)
                }
                return outcomes
            }
            try await Task.sleep(for: .seconds(2))
            try install(second.serverCertificate, second.serverKey)
            cluster.hangUp()
            #expect(await cluster.eventually(within: 10) { (try? await Self.fingerprint(port: port)) == secondPrint }, "\(cluster.log("master"))")
            let outcomes = await load.value
            #expect(outcomes.count >= 10 && outcomes.allSatisfy { $0 == 0 }, "curl exits: \(outcomes)")

            // A certificate with another's key: refused at the re-read, the served one stays.
            try install(firstCertificate, second.serverKey)
            cluster.hangUp()
            #expect(await cluster.eventually(within: 10) { cluster.log("master").contains("cannot re-read the TLS certificate") })
            #expect(try await Self.fingerprint(port: port) == secondPrint)
        }
    }
}

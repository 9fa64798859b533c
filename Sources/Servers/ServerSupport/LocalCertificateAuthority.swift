import Crypto
import Foundation
import SpeedyCore
import SwiftASN1
import X509

/// A private CA and a server certificate signed by it, made with swift-certificates, for
/// `speedy up --tls`: clients trust the CA (`skopeo --dest-cert-dir`, `curl --cacert`) and
/// verification stays on.
public enum LocalCertificateAuthority {
    /// Where the files went.
    public struct Files: Sendable {
        /// The CA certificate, alone in its directory (what `--dest-cert-dir` wants).
        public var caCertificate: String
        /// The server's certificate chain and key.
        public var serverCertificate: String
        public var serverKey: String
    }

    /// Makes the CA (in `publicDirectory`) and a P-256 server certificate valid for
    /// `127.0.0.1` and `localhost` (keys in `privateDirectory`, mode 0600); keeps files that
    /// already exist, so a restart serves the same certificate. With the CA's certificate and key
    /// in place but no server certificate, it issues a new one under the same CA: how a server
    /// certificate is renewed (delete `server.crt` and `server.key`, run again, send SIGHUP).
    public static func make(publicDirectory: String, privateDirectory: String, hosts: [String] = ["127.0.0.1", "localhost"]) throws -> Files {
        let files = Files(
            caCertificate: publicDirectory + "/ca.crt", serverCertificate: privateDirectory + "/server.crt",
            serverKey: privateDirectory + "/server.key")
        let manager = FileManager.default
        if [files.caCertificate, files.serverCertificate, files.serverKey].allSatisfy(manager.fileExists) { return files }
        try manager.createDirectory(atPath: publicDirectory, withIntermediateDirectories: true)
        try manager.createDirectory(atPath: privateDirectory, withIntermediateDirectories: true)

        let now = Date()
        let caKeyPath = privateDirectory + "/ca.key"
        let caKey: P256.Signing.PrivateKey
        let ca: Certificate
        if manager.fileExists(atPath: files.caCertificate), manager.fileExists(atPath: caKeyPath) {
            caKey = try P256.Signing.PrivateKey(pemRepresentation: String(contentsOfFile: caKeyPath, encoding: .utf8))
            ca = try Certificate(pemEncoded: String(contentsOfFile: files.caCertificate, encoding: .utf8))
        } else {
            caKey = P256.Signing.PrivateKey()
            // A serial in the name: clients given two CAs while one replaces the other find the
            // issuer by name, and two CAs of one name would be tried as one.
            let caName = try DistinguishedName {
                OrganizationName("Speedy")
                CommonName("Speedy local CA \(UInt32.random(in: 0...UInt32.max))")
            }
            ca = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(caKey.publicKey), notValidBefore: now - 3600,
                notValidAfter: now + 10 * 365 * 86400, issuer: caName, subject: caName, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                },
                issuerPrivateKey: .init(caKey))
            try SecretFile.write(caKey.pemRepresentation, to: caKeyPath)
            try Data((try ca.serializeAsPEM().pemString + "\n").utf8).write(to: URL(fileURLWithPath: files.caCertificate), options: .atomic)
        }
        let caName = ca.subject

        let serverKey = P256.Signing.PrivateKey()
        let names: [GeneralName] = hosts.map { host in
            if let address = IPv4(host) { return .ipAddress(ASN1OctetString(contentBytes: ArraySlice(address))) }
            return .dnsName(host)
        }
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(serverKey.publicKey), notValidBefore: now - 3600,
            notValidAfter: now + 825 * 86400, issuer: caName, subject: try DistinguishedName { CommonName(hosts.first ?? "localhost") },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
            },
            issuerPrivateKey: .init(caKey))

        try SecretFile.write(serverKey.pemRepresentation, to: files.serverKey)
        try Data((try server.serializeAsPEM().pemString + "\n").utf8).write(to: URL(fileURLWithPath: files.serverCertificate), options: .atomic)
        return files
    }

    /// The four bytes of a dotted IPv4 address.
    private static func IPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        let bytes = parts.compactMap { UInt8($0) }
        return bytes.count == 4 ? bytes : nil
    }
}

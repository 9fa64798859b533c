import ArgumentParser
import Foundation
import ServerSupport

/// `speedy certificates`: a private CA and one server certificate for the cluster's TLS.
struct Certificates: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certificates",
        abstract: "Make a private CA and a server certificate for the cluster's TLS (P-256).",
        discussion: """
            Writes DIR/ca.crt (give it to clients: --ca, skopeo --dest-cert-dir DIR) and, in \
            DIR/private (mode 0600 files), server.crt and server.key for --tls-cert/--tls-key, \
            valid for every --host, and the CA's key. Files that exist are kept. For a cluster \
            across hosts, list every host's name and address, or make one certificate per host.
            """
    )

    @Option(help: "Directory to write to.")
    var out = "./speedy-tls"

    @Option(help: ArgumentHelp("A DNS name or IPv4 address the certificate is valid for (repeat).", valueName: "host"))
    var host: [String] = []

    func run() throws {
        let hosts = host.isEmpty ? ["127.0.0.1", "localhost"] : host
        let files = try LocalCertificateAuthority.make(publicDirectory: out, privateDirectory: out + "/private", hosts: hosts)
        print("CA certificate      \(files.caCertificate)")
        print("server certificate  \(files.serverCertificate)   (for \(hosts.joined(separator: ", ")))")
        print("server key          \(files.serverKey)")
    }
}

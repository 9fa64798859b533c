import ArgumentParser
import Foundation
import ServerSupport
import SpeedyClients
import SpeedyCore

/// `speedy credentials`: a secret per role and the role table that lists them.
struct Credentials: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "Make a secret for each role of the cluster and the role table that lists them.",
        discussion: """
            Writes DIR/<role>.secret (mode 0600) for chunkmaster, metaserver, chunkserver, \
            imageserver, tracker, monitor and operator, keeping those that exist, and DIR/roles, \
            the table every role is given with --role-table: for each secret line, the SHA-256 of \
            the credential it sends each kind of port it calls (and an imageserver's chunk-ticket \
            key). Give each process only its role's secret, as --cluster-secret-file; the \
            operator's is for chunktool, transfer and speedy-console, which may call every route, \
            the monitor's for Prometheus (GET /metrics). The table holds no secret.

            To rotate a role's secret, add the new one as a second line of its file and run this \
            again (the table then lists both: SIGHUP every role), put the new line first and \
            SIGHUP the role's processes, then remove the old line and run this again (docs/security.md).
            """
    )

    @Option(help: ArgumentHelp("Directory to write to.", valueName: "dir"))
    var out = "./speedy-credentials"

    @Option(help: ArgumentHelp("The operator's secret file (default: DIR/operator.secret; `speedy up` keeps it in DATA/cluster-secret).", valueName: "path"))
    var operatorSecret: String?

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @Option(
        help: ArgumentHelp(
            "Print, instead, the credential the secret in --secret-file sends ports of this kind (chunkmaster, metaserver, chunkserver, imageserver, tracker), for curl or Prometheus; nothing is written.",
            valueName: "port"))
    var printCredential: String?

    @Option(help: ArgumentHelp("The secret file --print-credential reads (default: the operator's).", valueName: "path"))
    var secretFile: String?

    func validate() throws {
        if let printCredential, ClusterRole(rawValue: printCredential)?.servesAPort != true {
            throw ValidationError(
                "--print-credential takes a kind of port: \(ClusterRole.servers.map(\.rawValue).joined(separator: ", ")); got '\(printCredential)'")
        }
        if secretFile != nil, printCredential == nil { throw ValidationError("--secret-file goes with --print-credential") }
    }

    func run() throws {
        if let port = printCredential.flatMap(ClusterRole.init(rawValue:)) {
            let path = secretFile ?? RoleCredentialFiles(directory: out, operatorSecret: operatorSecret).secretPath(.operator)
            do {
                print(ClusterCredential.token(try ClusterSecret.load(path: path), for: port))
            } catch {
                throw ValidationError(error.description)
            }
            return
        }
        do {
            let written = try RoleCredentialFiles(directory: out, operatorSecret: operatorSecret).make()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(written), as: UTF8.self))
                return
            }
            for (role, path) in written.secrets.sorted(by: { $0.key < $1.key }) {
                print("\(role.padding(toLength: 12, withPad: " ", startingAt: 0)) \(path)")
            }
            print("role table   \(written.table)   (\(written.entries) entries; give it to every role with --role-table)")
        } catch let error as ClusterSecret.LoadError {
            throw ValidationError(error.description)
        } catch let error as RoleCredentialFiles.Failure {
            throw ValidationError(error.description)
        }
    }
}

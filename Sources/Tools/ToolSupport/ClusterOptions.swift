import ArgumentParser
import Foundation
import SpeedyClients
import SpeedyCore

/// How a client command reaches the cluster's internal APIs: the secret file and the private CA,
/// from which ``transport(internalTLS:actor:)`` makes the ``ClusterTransport`` its clients use.
public struct ClusterOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "File holding the cluster secret, or the operator's with a role table (default: $SPEEDY_CLUSTER_SECRET_FILE, else ./speedy-data/cluster-secret when it exists). With a role table ($SPEEDY_ROLE_TABLE, or `roles` or `credentials/roles` beside the file) only credentials derived from it are sent.",
            valueName: "path"))
    public var clusterSecretFile: String?

    @Option(help: ArgumentHelp("PEM file of the private CA that signed the cluster's TLS certificates.", valueName: "path"))
    public var ca: String?

    public init() {}

    /// Where `speedy up` keeps the secret of a cluster started in the current directory.
    public static let localSecretPath = "./speedy-data/cluster-secret"

    /// The secret file after flag, environment and `speedy up`'s default.
    public static func secretPath(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let flag { return flag }
        if let path = environment["SPEEDY_CLUSTER_SECRET_FILE"], !path.isEmpty { return path }
        return FileManager.default.fileExists(atPath: localSecretPath) ? localSecretPath : nil
    }

    /// Whether the cluster whose secret is at `secretPath` has a role table, so its ports take
    /// credentials bound to their kind and never the secret: `SPEEDY_ROLE_TABLE` is set, or a
    /// table lies beside the secret (`speedy credentials`: DIR/roles; `speedy up`: DATA/credentials/roles).
    public static func hasRoleTable(secretPath: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        if let table = environment["SPEEDY_ROLE_TABLE"], !table.isEmpty { return true }
        let directory = URL(fileURLWithPath: secretPath).deletingLastPathComponent().path
        return [directory + "/roles", directory + "/credentials/roles"].contains { FileManager.default.fileExists(atPath: $0) }
    }

    /// Loads the secret (when one is found) and checks the CA: the transport a tool's clients use.
    /// - Parameter internalTLS: whether the cluster's internal APIs speak TLS.
    public func transport(internalTLS: Bool = false, actor: String? = nil) throws -> ClusterTransport {
        var secret: ClusterSecret?
        var bound = false
        if let path = Self.secretPath(flag: clusterSecretFile) {
            do {
                secret = try ClusterSecret.load(path: path)
            } catch {
                throw ValidationError(error.description)
            }
            bound = Self.hasRoleTable(secretPath: path)
        }
        do {
            var transport = try ClusterTransport(secret: secret, caFile: ca, internalTLS: internalTLS, actor: actor)
            transport.boundCredentials = bound
            return transport
        } catch {
            throw ValidationError("cannot use the CA file \(ca ?? ""): \(error)")
        }
    }

    public func validate() throws {
        // MasterOptions checks these with the master's URL (it decides the scheme).
    }
}

import Foundation
import SpeedyCore

/// The files `speedy credentials` (and `speedy up`) keep: a secret file per role, and the role
/// table made from every line of them.
public struct RoleCredentialFiles: Sendable {
    /// What was written, for `--json`.
    public struct Written: Codable, Sendable {
        /// The secret file of each role.
        public var secrets: [String: String]
        /// The role table.
        public var table: String
        /// How many lines the table lists.
        public var entries: Int
    }

    /// The directory of the secret files and the table.
    public let directory: String
    /// Where the operator's secret lives (`speedy up`: DATA/cluster-secret, which tools look for).
    public var operatorSecret: String?

    /// The files in `directory`; the operator's secret at `operatorSecret` when given.
    public init(directory: String, operatorSecret: String? = nil) {
        self.directory = directory
        self.operatorSecret = operatorSecret
    }

    /// The secret file of `role`.
    public func secretPath(_ role: ClusterRole) -> String {
        role == .operator ? (operatorSecret ?? "\(directory)/operator.secret") : "\(directory)/\(role.rawValue).secret"
    }

    /// The role table.
    public var tablePath: String { "\(directory)/roles" }

    /// Makes the secrets that are missing and writes the table from every secret file's lines.
    @discardableResult
    public func make() throws -> Written {
        var entries: [RoleTable.Entry] = []
        var secrets: [String: String] = [:]
        for role in ClusterRole.allCases {
            let path = secretPath(role)
            _ = try ClusterSecret.loadOrCreate(path: path)
            secrets[role.rawValue] = path
            for secret in try ClusterSecret.loadAll(path: path) {
                let ticketKey = role == .imageserver ? ChunkTicketKey.publicKey(signingWith: secret) : nil
                entries.append(RoleTable.Entry(role: role, secret: secret, ticketKey: ticketKey))
            }
        }
        try SecretFile.write(RoleTable(entries: entries).text, to: tablePath)
        return Written(secrets: secrets, table: tablePath, entries: entries.count)
    }
}

import Foundation
import SpeedyClients
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

    /// Why the files cannot be made.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Role secrets are made 32 random bytes (64 hex digits); a shorter one, typed by hand, could
    /// be guessed offline from the table, which every host holds.
    public static let minimumSecretLength = 32

    /// The directory of the secret files and the table.
    public let directory: String
    /// Where the operator's secret lives (`speedy up`: DATA/cluster-secret, which tools look for).
    public var operatorSecret: String?
    /// Whether every port also takes the operator's secret itself (table port `*`): for a
    /// person's `curl`, and tests; weaker, as any port it is sent to then holds it.
    public var operatorSecretEverywhere = false

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

    /// The table's entries for `secret`, held by `role`: one for each kind of port the role may
    /// call anything on, the credential bound to it (an imageserver's chunkserver line carries
    /// its ticket key, which chunkservers check tickets with).
    public func entries(_ role: ClusterRole, _ secret: ClusterSecret) -> [RoleTable.Entry] {
        var entries: [RoleTable.Entry] = ClusterRole.servers.compactMap { port in
            guard RouteAuthorization.of(port)?.admitsAnything(role) == true else { return nil }
            let ticketKey = role == .imageserver && port == .chunkserver ? ChunkTicketKey.publicKey(signingWith: secret) : nil
            return RoleTable.Entry(
                role: role, audience: port, secretHash: RoleTable.hash(ClusterCredential.token(secret, for: port).utf8), ticketKey: ticketKey)
        }
        if role == .operator, operatorSecretEverywhere {
            entries.append(RoleTable.Entry(role: role, audience: nil, secretHash: RoleTable.hash(secret.value.utf8)))
        }
        return entries
    }

    /// Makes the secrets that are missing and writes the table from every secret file's lines,
    /// after reading it back as every role will.
    @discardableResult
    public func make() throws -> Written {
        var entries: [RoleTable.Entry] = []
        var secrets: [String: String] = [:]
        for role in ClusterRole.allCases {
            let path = secretPath(role)
            _ = try ClusterSecret.loadOrCreate(path: path)
            secrets[role.rawValue] = path
            for secret in try ClusterSecret.loadAll(path: path) {
                guard secret.value.utf8.count >= Self.minimumSecretLength else {
                    throw Failure(
                        description: "a secret in \(path) is shorter than \(Self.minimumSecretLength) characters; make one with `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`")
                }
                entries += self.entries(role, secret)
            }
        }
        let text = RoleTable(entries: entries).text
        do {
            _ = try RoleTable.parse(text)
        } catch {
            throw Failure(description: "the table made from \(directory) would not be read: \(error) (the same secret in two files?)")
        }
        // The table holds no secret, and every role's user must read it.
        try SecretFile.write(text, to: tablePath, mode: 0o644)
        return Written(secrets: secrets, table: tablePath, entries: entries.count)
    }
}

import ArgumentParser
import Foundation
import CommandLineSupport
import ServerSupport
import SpeedyClients
import SpeedyCore

/// The options every internal role shares: the cluster secret its API demands (and sends to its
/// peers), TLS for its port, and the CA it trusts for its peers'.
struct RoleSecurityOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "File holding the cluster secret every internal API asks for (default: $SPEEDY_CLUSTER_SECRET_FILE). `speedy up` makes one in its data directory. While rotating it holds two, one per line: the first is sent, both are accepted. SIGHUP re-reads it.",
            valueName: "path"))
    var clusterSecretFile: String?

    @Option(
        help: ArgumentHelp(
            "Role table (default: $SPEEDY_ROLE_TABLE): each role holds a secret of its own, --cluster-secret-file holds this role's, and the port lets each caller do only what its role may (docs/security.md, \"Roles\"). `speedy credentials` makes the secrets and the table. SIGHUP re-reads it.",
            valueName: "path"))
    var roleTable: String?

    @Flag(help: "Run without a cluster secret: anyone who can reach the port can change the cluster. For experiments only.")
    var insecure = false

    @Option(help: ArgumentHelp("PEM certificate chain: serve this role's API over TLS. SIGHUP re-reads it and --tls-key for new connections.", valueName: "path"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "path"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("PEM file of a private CA to trust for the cluster's TLS peers.", valueName: "path"))
    var ca: String?

    @Option(help: ArgumentHelp("Oldest TLS version the port accepts with --tls-cert: 1.2 or 1.3.", valueName: "version"))
    var tlsMinVersion: TLSMinimumVersion = .v1_2

    @Option(
        help: ArgumentHelp(
            "Connections one client (its IPv4 address, or IPv6 /64) may hold open on this port at once; one more is closed as it connects. 0: no cap. (default: 256 on the imageserver; 1024 on the internal roles, whose callers pool connections)",
            valueName: "n"))
    var maxConnectionsPerClient: Int?

    @Option(
        help: ArgumentHelp(
            "How long a request head may take from its first byte (the first request's from connecting, TLS handshake included): a client that trickles header bytes is answered 408 and closed.",
            valueName: "duration"))
    var headerTimeout = DurationArgument(.seconds(20))

    func validate() throws {
        guard (tlsCert == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        if insecure, clusterSecretFile != nil { throw ValidationError("--insecure and --cluster-secret-file exclude each other") }
        if insecure, roleTable != nil { throw ValidationError("--insecure and --role-table exclude each other") }
        if roleTable != nil, secretPath == nil {
            throw ValidationError("--role-table needs this role's own secret: --cluster-secret-file (or SPEEDY_CLUSTER_SECRET_FILE)")
        }
        if let cap = maxConnectionsPerClient, !(0...1_000_000).contains(cap) {
            throw ValidationError("--max-connections-per-client must be between 0 (no cap) and 1000000, got \(cap)")
        }
        guard headerTimeout.duration >= .seconds(1), headerTimeout.duration <= .seconds(3600) else {
            throw ValidationError("--header-timeout must be between 1s and 1h")
        }
    }

    /// The port's TLS and connection limits, as the flags say.
    func serverTransport(role: String) -> ServerTransport {
        let tls = tlsCert.map { ServerTransport.TLSFiles(certificate: $0, key: tlsKey ?? "") }
        // An imageserver pools up to 128 connections to each member, and `speedy up` puts every
        // role on one address: internal ports need more room than the registry's clients.
        let cap = maxConnectionsPerClient ?? (role == "imageserver" ? 256 : 1024)
        return ServerTransport(
            tls: tls, tlsMinimumVersion: tlsMinVersion,
            connectionLimits: ConnectionLimits(maxPerClient: cap, headerTimeout: headerTimeout.duration))
    }

    /// The secret file after the flag and the environment.
    var secretPath: String? {
        clusterSecretFile ?? ProcessInfo.processInfo.environment["SPEEDY_CLUSTER_SECRET_FILE"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The role table file after the flag and the environment.
    var roleTablePath: String? {
        roleTable ?? ProcessInfo.processInfo.environment["SPEEDY_ROLE_TABLE"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Loads the role table, and checks (now and at every re-read) that the secret this role
    /// sends is listed as `role`'s.
    func loadRoles(role: String, sending secrets: ClusterSecretRing?) throws -> RoleTableFile? {
        guard !insecure, let path = roleTablePath, let secrets else { return nil }
        guard let role = ClusterRole(rawValue: role) else { throw ValidationError("the \(role) takes no role table") }
        let secretFile = secretPath ?? "--cluster-secret-file"
        do {
            return try RoleTableFile(path: path, sending: { secrets.current }) { table, secret in
                Self.refusal(of: table, for: role, sending: secret, from: secretFile)
            }
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// Why `table` does not let `role`, sending `secret`, run: its credential is not listed as
    /// the role's for any kind of port, or (an imageserver) its ticket key is missing; nil when
    /// it does.
    static func refusal(of table: RoleTable, for role: ClusterRole, sending secret: ClusterSecret, from file: String) -> String? {
        guard secret.value.utf8.count >= RoleCredentialFiles.minimumSecretLength else {
            return "the secret in \(file) is shorter than \(RoleCredentialFiles.minimumSecretLength) characters; `speedy credentials` makes role secrets"
        }
        // Whom each kind of port takes this secret's credential for.
        let listed = ClusterRole.servers.map { port in (port, table.role(carriedBy: ClusterCredential.authorization(secret, for: port), at: port)) }
        guard listed.contains(where: { $0.1 == role }) else {
            let whose = listed.lazy.compactMap(\.1).first.map { "the \($0)'s" } ?? "not"
            return "the secret in \(file) is \(whose) in it; the \(role) needs its own (`speedy credentials` makes them)"
        }
        // Every kind of port the role calls must know it, or those calls would all be refused.
        let missing = listed.filter { port, found in RouteAuthorization.of(port)?.admitsAnything(role) == true && found != role }.map(\.0)
        guard missing.isEmpty else {
            return "it lists no \(role) credential for the \(missing.map(\.rawValue).joined(separator: ", ")) port of this secret; remake it with `speedy credentials`"
        }
        if role == .imageserver, !table.ticketKeys.contains(ChunkTicketKey.publicKey(signingWith: secret)) {
            return "it lists no ticket key for this imageserver's secret, so agents' chunk reads would be refused; remake it with `speedy credentials`"
        }
        return nil
    }

    /// Loads the secret (refusing to go on without one unless --insecure) and returns how the
    /// role's own port is protected and how it calls its peers.
    /// - Parameters:
    ///   - talksToMaster: whether the role calls a master (then `masterFlag` says where).
    ///   - masterFlag: the role's `--master` as given; `https://` there means the whole cluster
    ///     speaks TLS, and so does a bare `host:port` when this role has a certificate or a CA.
    func resolve(role: String, talksToMaster: Bool = false, masterFlag: String? = nil) throws -> RoleSecurity {
        var secrets: ClusterSecretRing?
        // --insecure, given on the command line, wins over a secret file named in the environment.
        if !insecure, let path = secretPath {
            do {
                secrets = try ClusterSecretRing(path: path)
            } catch {
                throw ValidationError(error.description)
            }
        } else if !insecure {
            throw ValidationError(
                "the \(role) needs the cluster secret: pass --cluster-secret-file FILE (or set SPEEDY_CLUSTER_SECRET_FILE); make one with `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > FILE`, or pass --insecure to run unprotected"
            )
        }
        let tls = tlsCert.map { ServerTransport.TLSFiles(certificate: $0, key: tlsKey ?? "") }
        let internalTLS =
            talksToMaster ? MasterLocation.speaksTLS(flag: masterFlag, assumeTLS: tls != nil || ca != nil) : (tls != nil)
        let peers: ClusterTransport
        do {
            peers = try ClusterTransport(secrets: secrets, caFile: ca, internalTLS: internalTLS)
        } catch {
            throw ValidationError("cannot use the CA file \(ca ?? ""): \(error)")
        }
        let roles = try loadRoles(role: role, sending: secrets)
        return RoleSecurity(secrets: secrets, roles: roles, transport: serverTransport(role: role), peers: peers)
    }
}

extension TLSMinimumVersion: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument) }
    public var defaultValueDescription: String { rawValue }
}

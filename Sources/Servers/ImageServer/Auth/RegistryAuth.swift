import Foundation
import JWTKit
import Logging
import RegistryTokens
import SpeedyCore
import Synchronization

/// Where the registry's logins and permissions come from.
public struct RegistryAuthConfiguration: Sendable {
    /// htpasswd file of users (bcrypt); nil: no logins.
    public var htpasswdPath: String?
    /// Access file (``AccessPolicy``); nil: logged-in users may do everything, anonymous nothing
    /// (or, without users either, everyone everything).
    public var accessPath: String?
    /// File holding the key tokens are signed with; every imageserver of a cluster must share it.
    /// nil: a random key of this process (its tokens are good at this imageserver only).
    public var tokenKeyPath: String?
    /// The service name in challenges and tokens.
    public var service = "speedy"
    /// The token endpoint's URL in challenges; nil: `/token` on the host the client asked for.
    public var realm: String?
    /// How long an issued token is good for.
    public var tokenLifetime: Duration = .seconds(300)

    /// Creates settings; with no files the registry is open to everyone (today's quick start).
    public init(htpasswdPath: String? = nil, accessPath: String? = nil, tokenKeyPath: String? = nil) {
        self.htpasswdPath = htpasswdPath
        self.accessPath = accessPath
        self.tokenKeyPath = tokenKeyPath
    }

    /// Whether requests are checked at all.
    public var enabled: Bool { htpasswdPath != nil || accessPath != nil }
}

/// Who a request is, after its credentials were checked.
enum RegistryIdentity: Sendable {
    case anonymous
    /// Basic credentials that checked out.
    case user(String)
    /// A bearer token we issued.
    case token(RegistryClaims)

    /// The user name, if logged in.
    var user: String? {
        switch self {
        case .anonymous: nil
        case .user(let name): name
        case .token(let claims): claims.sub?.value
        }
    }
}

/// The registry's logins and permissions: the user file, the access policy and the token key,
/// re-read on SIGHUP (``reload()``) without a restart.
final class RegistryAuth: Sendable {
    let configuration: RegistryAuthConfiguration
    private let currentIssuer: Mutex<TokenIssuer>
    private let policy: Mutex<AccessPolicy>
    private let passwords: PasswordChecker
    private let logger: Logger

    /// Why the auth files could not be used.
    struct LoadError: Error, CustomStringConvertible {
        let description: String
    }

    private init(configuration: RegistryAuthConfiguration, issuer: TokenIssuer, policy: AccessPolicy, users: UserFile, logger: Logger) {
        self.configuration = configuration
        currentIssuer = Mutex(issuer)
        self.policy = Mutex(policy)
        passwords = PasswordChecker(users: users)
        self.logger = logger
    }

    /// Reads the files named by `configuration`.
    static func load(_ configuration: RegistryAuthConfiguration, logger: Logger) async throws -> RegistryAuth {
        let (policy, users) = try readFiles(configuration)
        let keys: [[UInt8]]
        if let path = configuration.tokenKeyPath {
            keys = try TokenKeyFile.read(path)
        } else {
            keys = [(0..<32).map { _ in UInt8.random(in: 0...255) }]
            if configuration.enabled {
                logger.notice("no --token-key-file: tokens are signed with a key of this process and are good at this imageserver only")
            }
        }
        let issuer = await TokenIssuer(keys: keys, service: configuration.service, lifetime: configuration.tokenLifetime)
        return RegistryAuth(configuration: configuration, issuer: issuer, policy: policy, users: users, logger: logger)
    }

    /// What signs and checks tokens now (the token key file as last read).
    var issuer: TokenIssuer { currentIssuer.withLock { $0 } }

    private static func readFiles(_ configuration: RegistryAuthConfiguration) throws -> (AccessPolicy, UserFile) {
        func read(_ path: String, _ what: String) throws -> String {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw LoadError(description: "cannot read the \(what) file \(path): \(error.localizedDescription)")
            }
        }
        var users = try UserFile(parsing: "")
        if let path = configuration.htpasswdPath {
            do {
                users = try UserFile(parsing: try read(path, "htpasswd"))
            } catch let error as UserFile.ParseError {
                throw LoadError(description: "\(path): \(error)")
            }
        }
        var policy = configuration.htpasswdPath == nil ? AccessPolicy.openToAll : AccessPolicy.usersOnly
        if let path = configuration.accessPath {
            do {
                policy = try AccessPolicy(parsing: try read(path, "access"))
            } catch let error as AccessPolicy.ParseError {
                throw LoadError(description: "\(path): \(error)")
            }
        }
        return (policy, users)
    }

    /// Re-reads the user and access files and the token key file; on any error keeps what it had
    /// and says why.
    func reload() async {
        do {
            let (policy, users) = try Self.readFiles(configuration)
            self.policy.withLock { $0 = policy }
            passwords.replace(users)
            logger.notice("re-read the registry's users (\(users.users.count)) and access rules (\(policy.rules.count))")
        } catch {
            logger.error("kept the previous users and access rules: \(error)")
        }
        guard let path = configuration.tokenKeyPath else { return }
        do {
            let keys = try TokenKeyFile.read(path)
            let issuer = await TokenIssuer(keys: keys, service: configuration.service, lifetime: configuration.tokenLifetime)
            currentIssuer.withLock { $0 = issuer }
            logger.notice("re-read the token key file \(path): signing with the first of \(keys.count) key\(keys.count == 1 ? "" : "s"), accepting all")
        } catch {
            logger.error("kept the previous token keys: \(error)")
        }
    }

    /// Checks an `Authorization` header sent from `client` (a ``ClientNetwork`` key): nil when
    /// it carries credentials that do not check out (a wrong password, a forged or expired token).
    /// - Throws: ``LoginDeferred`` when a password cannot be checked now (busy, or over the
    ///   failed-login limits): the client is to come back, not told its password is wrong.
    func identify(_ header: String?, from client: String = "unknown") async throws(LoginDeferred) -> RegistryIdentity? {
        guard let header, configuration.enabled else { return .anonymous }
        if header.hasPrefix("Bearer ") {
            return await issuer.check(String(header.dropFirst(7))).map { .token($0) }
        }
        if header.hasPrefix("Basic ") {
            guard let credentials = BasicCredentials(header: header) else { return nil }
            let user = credentials.user
            return try await passwords.check(user: user, password: credentials.password, from: client) ? .user(user) : nil
        }
        return nil
    }

    /// What the policy gives `user` on `repository`.
    func policyActions(for user: String?, on repository: String) -> Set<RegistryAction> {
        guard configuration.enabled else { return Set(RegistryAction.allCases) }
        return policy.withLock { $0.actions(for: user, on: repository) }
    }

    /// The access rules as they are now; nil without logins (everything allowed). A listing asks
    /// this copy about every name: one lock, and one answer even if SIGHUP swaps the file mid-way.
    func currentPolicy() -> AccessPolicy? {
        configuration.enabled ? policy.withLock { $0 } : nil
    }

    /// Whether `identity` may do `action` on `repository`: the policy must allow it, and a token
    /// must also carry it (so a SIGHUP that takes a right away takes it from tokens too).
    func allows(_ identity: RegistryIdentity, _ action: RegistryAction, on repository: String) -> Bool {
        guard policyActions(for: identity.user, on: repository).contains(action) else { return false }
        if case .token(let claims) = identity {
            // A user removed from the file (and SIGHUP) loses what their tokens still say.
            if let user = claims.sub?.value, configuration.htpasswdPath != nil, !passwords.knows(user) { return false }
            return claims.actions(on: repository).contains(action)
        }
        return true
    }
}

/// The token key file (`--token-key-file`): one key per line, at least 32 characters each, white
/// space around them ignored; two while the key rotates (the first signs, both are accepted).
enum TokenKeyFile {
    /// The most keys a file may hold: a rotation needs two.
    static let maximumKeys = 4

    /// The keys' bytes, the signing key's first.
    static func read(_ path: String) throws -> [[UInt8]] {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw RegistryAuth.LoadError(description: "cannot read the token key file \(path): \(error.localizedDescription)")
        }
        let keys = SecretFile.lines(of: text)
        guard (1...maximumKeys).contains(keys.count) else {
            throw RegistryAuth.LoadError(description: "the token key file \(path) holds \(keys.count) keys: one per line, one to \(maximumKeys)")
        }
        guard keys.allSatisfy({ $0.utf8.count >= 32 }) else {
            throw RegistryAuth.LoadError(
                description: "a key in \(path) is shorter than 32 characters (`head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'` makes one)")
        }
        return keys.map { Array($0.utf8) }
    }
}

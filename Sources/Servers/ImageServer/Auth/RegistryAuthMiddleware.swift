import HTTPTypes
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore

/// Checks every `/v2` request's credentials against ``RegistryAuth`` before it reaches a route:
/// no or bad credentials where some are needed get 401 with the Bearer challenge clients
/// follow to the token endpoint; good credentials without the right get 403 DENIED.
struct RegistryAuthMiddleware: RouterMiddleware {
    typealias Context = RegistryRequestContext
    let auth: RegistryAuth
    let logger: Logger
    /// Whether the registry port speaks TLS (the scheme of the default realm).
    let tls: Bool

    /// What a request needs.
    enum Requirement: Equatable {
        /// `/v2/`: any valid login (clients probe it to find out how to log in).
        case login
        /// Listings that are filtered by what the caller may pull.
        case filtered
        case action(RegistryAction, repository: String)
        /// Nothing: OPTIONS, or a path the router will answer 404.
        case none
    }

    static func requirement(_ request: Request) -> Requirement {
        guard let path = OCIPath(path: request.uri.path) else { return .none }
        let action: RegistryAction
        switch request.method {
        case .get, .head: action = .pull
        case .post, .put, .patch: action = .push
        case .delete: action = .delete
        default: return .none
        }
        switch path {
        case .base: return .login
        case .catalog: return .filtered
        default:
            // An invalid name is answered NAME_INVALID by the router before any route runs (and
            // is never matched against the access patterns).
            guard let name = path.name, OCINames.isValidRepository(name) else { return .none }
            return .action(action, repository: name)
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Every request the router sends to the `/v2` routes, however its path is spelled.
        guard auth.configuration.enabled, RoutedPath.isWithin(request.routedPath, "/v2") else { return try await next(request, context) }
        let requirement = Self.requirement(request)
        let checked: RegistryIdentity?
        do {
            checked = try await auth.identify(request.headers[.authorization], from: context.clientNetwork)
        } catch {
            logger.notice("deferred a login for \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): \(error)")
            throw OCIError.loginDeferred(error)
        }
        guard let identity = checked else {
            logger.notice("refused \(request.method) \(request.uri.path.prefix(200)) from \(context.clientAddress): credentials that do not check out")
            throw challenge(request, requirement, "the credentials are not valid")
        }
        var context = context
        context.access = RegistryAccess(auth: auth, identity: identity)
        RequestNote.current?.user = identity.user
        switch requirement {
        case .none, .filtered:
            break
        case .login:
            if case .anonymous = identity { throw challenge(request, requirement, "log in first") }
        case .action(let action, let repository):
            guard !auth.allows(identity, action, on: repository) else { break }
            // Anonymous, or a token without this scope while the user would have it: come back
            // with (a token for) the right credentials. Otherwise the user simply may not.
            let userMay = identity.user != nil && auth.policyActions(for: identity.user, on: repository).contains(action)
            if case .user = identity {
            } else if identity.user == nil || userMay {
                throw challenge(request, requirement, "\(action) on \(repository) needs a login with that right")
            }
            logger.notice("denied \(action) on \(repository) to \(identity.user ?? "anonymous") from \(context.clientAddress)")
            throw OCIError(.denied, "\(identity.user ?? "anonymous") may not \(action) \(repository)")
        }
        return try await next(request, context)
    }

    /// 401 UNAUTHORIZED with `WWW-Authenticate: Bearer realm=…,service=…[,scope=…]`.
    func challenge(_ request: Request, _ requirement: Requirement, _ message: String) -> OCIError {
        var error = OCIError(.unauthorized, "authentication required: \(message)")
        var value = "Bearer realm=\"\(realm(request))\",service=\"\(auth.configuration.service)\""
        if case .action(let action, let repository) = requirement {
            let actions = action == .push ? "pull,push" : action.rawValue
            value += ",scope=\"repository:\(repository):\(actions)\""
        }
        error.headers[.wwwAuthenticate] = value
        return error
    }

    func realm(_ request: Request) -> String {
        if let realm = auth.configuration.realm { return realm }
        let host = request.head.authority ?? "127.0.0.1"
        // Only a plain host[:port] goes into the header (no quotes or spaces smuggled in).
        let safeHost = host.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "/") } ? host : "127.0.0.1"
        return "\(tls ? "https" : "http")://\(safeHost)/token"
    }
}

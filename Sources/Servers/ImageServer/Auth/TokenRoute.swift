import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import Logging
import RegistryTokens
import ServerSupport
import SpeedyCore

/// The token endpoint of Docker's token authentication, served by the imageserver itself:
/// `GET /token?service=…&scope=repository:NAME:pull,push` with optional Basic credentials
/// answers `{"token", "access_token", "expires_in", "issued_at"}`, a JWT granting what was asked
/// for and the policy allows (anonymous callers get anonymous rights).
struct TokenRoute: Sendable {
    let auth: RegistryAuth
    let logger: Logger

    private struct Answer: Encodable {
        var token: String
        var access_token: String
        var expires_in: Int
        var issued_at: String
    }

    func register(on router: Router<RegistryRequestContext>) {
        router.get("/token") { request, context in try await issue(request, context) }
    }

    func issue(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        var user: String?
        if let header = request.headers[.authorization] {
            let identity: RegistryIdentity?
            do {
                identity = header.hasPrefix("Basic ") ? try await auth.identify(header, from: context.clientNetwork) : nil
            } catch {
                logger.notice("token deferred for \(context.clientAddress): \(error)")
                throw OCIError.loginDeferred(error)
            }
            guard case .user(let name)? = identity else {
                logger.notice("token refused to \(context.clientAddress): credentials that do not check out")
                var error = OCIError(.unauthorized, "the user name or password is wrong")
                error.headers[.wwwAuthenticate] = "Basic realm=\"\(auth.configuration.service)\""
                throw error
            }
            user = name
        }
        if let service = request.uri.queryParameters["service"], service != auth.configuration.service {
            throw OCIError(.unsupported, "this token endpoint serves '\(auth.configuration.service)', not '\(service.prefix(100))'")
        }
        let scopes = request.uri.queryParameters.getAll("scope").flatMap { $0.split(separator: " ") }
        guard scopes.count <= 64 else { throw OCIError(.unsupported, "too many scopes") }
        var access: [RegistryClaims.Access] = []
        for scope in scopes {
            let parts = scope.split(separator: ":", omittingEmptySubsequences: false)
            // repository:NAME:ACTIONS (NAME has no ':'); other scope types are granted nothing.
            guard parts.count == 3, parts[0] == "repository", OCINames.isValidRepository(String(parts[1])) else { continue }
            let asked = parts[2].split(separator: ",").compactMap { RegistryAction(rawValue: String($0)) }
            let allowed = auth.policyActions(for: user, on: String(parts[1]))
            let granted = Set(asked).intersection(allowed).sorted().map(\.rawValue)
            access.append(.init(type: "repository", name: String(parts[1]), actions: granted))
        }
        let (token, claims) = try await auth.issuer.issue(user: user, access: access)
        let answer = Answer(
            token: token, access_token: token, expires_in: Int(auth.configuration.tokenLifetime.components.seconds),
            issued_at: ISO8601DateFormatter().string(from: claims.iat.value))
        return try JSONResponse.make(answer)
    }
}

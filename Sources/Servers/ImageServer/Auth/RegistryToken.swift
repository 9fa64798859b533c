import Crypto
import Foundation
import JWTKit

/// The claims of a registry bearer token, in the form Docker's token specification gives them:
/// who (`sub`, absent for anonymous), for which service (`aud`), until when (`exp`), and the
/// granted actions per repository (`access`).
struct RegistryClaims: JWTPayload {
    /// One granted scope: `{"type": "repository", "name": "team/app", "actions": ["pull"]}`.
    struct Access: Codable, Sendable, Equatable {
        var type: String
        var name: String
        var actions: [String]
    }

    var iss: IssuerClaim
    var sub: SubjectClaim?
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var iat: IssuedAtClaim
    var access: [Access]

    func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp.verifyNotExpired()
    }

    /// The actions granted on `repository`.
    func actions(on repository: String) -> Set<RegistryAction> {
        Set(access.filter { $0.type == "repository" && $0.name == repository }.flatMap { $0.actions.compactMap(RegistryAction.init(rawValue:)) })
    }
}

/// Signs and checks registry tokens with an HMAC-SHA256 key shared by every imageserver of the
/// cluster (`--token-key-file`), so a token one imageserver issued is good at all of them.
struct TokenIssuer: Sendable {
    let keys: JWTKeyCollection
    /// The `service` clients name and tokens are issued for (the `aud` claim).
    let service: String
    /// How long a token is good for.
    let lifetime: Duration

    /// - Parameter key: the shared key's bytes; its SHA-256 signs (HS256 wants 32 bytes exactly).
    init(key: [UInt8], service: String, lifetime: Duration) async {
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(key: SymmetricKey(data: SHA256.hash(data: key))), digestAlgorithm: .sha256)
        self.service = service
        self.lifetime = lifetime
    }

    /// A signed token for `user` (nil: anonymous) with `access`.
    func issue(user: String?, access: [RegistryClaims.Access], now: Date = Date()) async throws -> (token: String, claims: RegistryClaims) {
        let seconds = Double(lifetime.components.seconds)
        let claims = RegistryClaims(
            iss: IssuerClaim(value: "speedy"), sub: user.map { SubjectClaim(value: $0) }, aud: AudienceClaim(value: service),
            exp: ExpirationClaim(value: now.addingTimeInterval(seconds)), iat: IssuedAtClaim(value: now), access: access)
        return (try await keys.sign(claims), claims)
    }

    /// The claims of `token` if it is ours, unexpired and for this service; nil otherwise.
    func check(_ token: String) async -> RegistryClaims? {
        guard token.utf8.count <= 16_384, let claims = try? await keys.verify(token, as: RegistryClaims.self) else { return nil }
        guard claims.aud.value.contains(service) else { return nil }
        return claims
    }
}

import Crypto
import Foundation
import JWTKit
import SpeedyCore

/// The claims of a registry bearer token, in the form Docker's token specification gives them:
/// who (`sub`, absent for anonymous), for which service (`aud`), until when (`exp`), and the
/// granted actions per repository (`access`). Every registered claim a token carries is checked:
/// the time claims here, the others by ``TokenIssuer/check(_:)``.
package struct RegistryClaims: JWTPayload {
    /// One granted scope: `{"type": "repository", "name": "team/app", "actions": ["pull"]}`.
    package struct Access: Codable, Sendable, Equatable {
        package var type: String
        package var name: String
        package var actions: [String]

        package init(type: String, name: String, actions: [String]) {
            self.type = type
            self.name = name
            self.actions = actions
        }
    }

    package var iss: IssuerClaim
    package var sub: SubjectClaim?
    package var aud: AudienceClaim
    package var exp: ExpirationClaim
    /// Not issued by Speedy, but honoured when present.
    package var nbf: NotBeforeClaim?
    package var iat: IssuedAtClaim
    package var access: [Access]

    package init(
        iss: IssuerClaim, sub: SubjectClaim?, aud: AudienceClaim, exp: ExpirationClaim, nbf: NotBeforeClaim?, iat: IssuedAtClaim,
        access: [Access]
    ) {
        (self.iss, self.sub, self.aud, self.exp, self.nbf, self.iat, self.access) = (iss, sub, aud, exp, nbf, iat, access)
    }

    /// How far apart the clocks of a cluster's imageservers may be, for `nbf` and `iat`.
    package static let clockSkew: TimeInterval = 30

    /// Called by jwt-kit once the signature checks out.
    package func verify(using algorithm: some JWTAlgorithm) async throws {
        try verifyTimes(at: Date())
    }

    /// Unexpired, not before its `nbf`, not issued in the future and issued before it expires.
    package func verifyTimes(at now: Date) throws {
        try exp.verifyNotExpired(currentDate: now)
        try nbf?.verifyNotBefore(currentDate: now.addingTimeInterval(Self.clockSkew))
        guard iat.value <= now.addingTimeInterval(Self.clockSkew), iat.value < exp.value else {
            throw JWTError.claimVerificationFailure(failedClaim: iat, reason: "issued in the future or after it expires")
        }
    }

    /// The actions granted on `repository`.
    package func actions(on repository: String) -> Set<RegistryAction> {
        Set(access.filter { $0.type == "repository" && $0.name == repository }.flatMap { $0.actions.compactMap(RegistryAction.init(rawValue:)) })
    }
}

/// Signs and checks registry tokens with an HMAC-SHA256 key shared by every imageserver of the
/// cluster (`--token-key-file`), so a token one imageserver issued is good at all of them.
///
/// While the key rotates it holds two: it signs with the first and accepts tokens signed with
/// either, so tokens issued before the rotation stay good until they expire.
package struct TokenIssuer: Sendable {
    /// One collection per key, the signing key's first.
    package let keys: [JWTKeyCollection]
    /// The `service` clients name and tokens are issued for (the `aud` claim).
    package let service: String
    /// How long a token is good for.
    package let lifetime: Duration

    /// - Parameter key: the shared key's bytes; its SHA-256 signs (HS256 wants 32 bytes exactly).
    package init(key: [UInt8], service: String, lifetime: Duration) async {
        await self.init(keys: [key], service: service, lifetime: lifetime)
    }

    /// - Parameter keys: the keys' bytes, at least one: the first signs, every one verifies.
    package init(keys: [[UInt8]], service: String, lifetime: Duration) async {
        precondition(!keys.isEmpty, "a token issuer needs a key")
        var collections: [JWTKeyCollection] = []
        for key in keys {
            let collection = JWTKeyCollection()
            await collection.add(hmac: HMACKey(key: SymmetricKey(data: SHA256.hash(data: key))), digestAlgorithm: .sha256)
            collections.append(collection)
        }
        self.keys = collections
        self.service = service
        self.lifetime = lifetime
    }

    /// A signed token for `user` (nil: anonymous) with `access`.
    package func issue(user: String?, access: [RegistryClaims.Access], now: Date = Date()) async throws -> (token: String, claims: RegistryClaims) {
        let seconds = Double(lifetime.components.seconds)
        let claims = RegistryClaims(
            iss: IssuerClaim(value: Self.issuer), sub: user.map { SubjectClaim(value: $0) }, aud: AudienceClaim(value: service),
            exp: ExpirationClaim(value: now.addingTimeInterval(seconds)), nbf: nil, iat: IssuedAtClaim(value: now), access: access)
        return (try await keys[0].sign(claims), claims)
    }

    /// The claims of `token` if it is ours (our algorithm, our signature, our issuer), in its
    /// time (``RegistryClaims/verifyTimes(at:)``), for this service and, if it names a user, a
    /// user name the user file could hold; nil otherwise.
    package func check(_ token: String) async -> RegistryClaims? {
        guard token.utf8.count <= 16_384, Self.headerIsOurs(token), let claims = await verified(token) else { return nil }
        guard claims.iss.value == Self.issuer, claims.aud.value.contains(service) else { return nil }
        if let user = claims.sub?.value, user.isEmpty || !user.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) { return nil }
        return claims
    }

    /// The claims of `token` once one of the keys verifies its signature (and its times).
    private func verified(_ token: String) async -> RegistryClaims? {
        for collection in keys {
            if let claims = try? await collection.verify(token, as: RegistryClaims.self) { return claims }
        }
        return nil
    }

    /// The `iss` of every token we issue.
    package static let issuer = "speedy"
    /// The algorithm we sign with: HMAC-SHA256.
    package static let algorithm = "HS256"

    /// jwt-kit checks the signature with our one key whatever `alg` the header names, so the
    /// header must name ours, and nothing a verifier would have to understand (`crit`, `kid`,
    /// embedded keys): `alg`, and `typ` if present, only.
    package static func headerIsOurs(_ token: String) -> Bool {
        guard let header = try? DefaultJWTParser().parse(Array(token.utf8), as: RegistryClaims.self).header else { return false }
        guard header.alg == algorithm, header.typ == nil || header.typ == "JWT" else { return false }
        return Set(header.fields.keys).isSubset(of: ["alg", "typ"])
    }
}

import Crypto
import Foundation
import JWTKit
import RegistryTokens
import Synchronization

/// The registry's bearer tokens (`Authorization: Bearer …`), checked as every imageserver checks
/// them (``TokenIssuer/check(_:)``), against a key of the fuzzer's own.
extension FuzzTarget {
    static let tokens: [FuzzTarget] = [token]

    /// The key the corpus's valid tokens are signed with (`Tests/Fuzz/corpus/token/valid-*`).
    static let tokenKey = Array("speedy-fuzz-token-key".utf8)
    private static let issuer = Mutex<TokenIssuer?>(nil)

    /// The issuer of the corpus's tokens: service `speedy`, the key above.
    static func tokenIssuer() async -> TokenIssuer {
        if let made = issuer.withLock({ $0 }) { return made }
        let made = await TokenIssuer(key: tokenKey, service: "speedy", lifetime: .seconds(3600))
        return issuer.withLock { current in
            if current == nil { current = made }
            return current!
        }
    }

    /// Whether `token` passes the imageserver's check with the corpus's key.
    public static func tokenVerifies(_ token: String) async -> Bool {
        await tokenIssuer().check(token) != nil
    }

    /// A token that passes the check must carry an HMAC-SHA256 of its first two parts made with
    /// the key, computed here without jwt-kit: no header trick (another `alg`, `none`, a `kid`)
    /// and no second encoding of a signature gets a token past the check.
    static let token = FuzzTarget("token", "a registry bearer token (a JWT)", asyncCheck: { input in
        let token = text(input)
        guard let claims = await tokenIssuer().check(token) else { return nil }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let signature = base64URLDecoded(parts[2]) else { return "accepted a token that is not three parts" }
        let key = SymmetricKey(data: SHA256.hash(data: tokenKey))
        let expected = HMAC<SHA256>.authenticationCode(for: Data("\(parts[0]).\(parts[1])".utf8), using: key)
        return first(
            expect(Data(expected) == signature, "accepted \(token.debugDescription) without our signature"),
            expect(claims.iss.value == TokenIssuer.issuer && claims.aud.value.contains("speedy"), "accepted another issuer or service"))
    })

    /// Base64url without padding, strictly: nil for anything else.
    private static func base64URLDecoded(_ text: Substring) -> Data? {
        guard text.utf8.allSatisfy({ $0 == 0x2d || $0 == 0x5f || (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) })
        else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}

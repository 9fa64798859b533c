import Crypto
import SpeedyCore

/// What a process sends an internal port instead of its secret: a credential bound to the kind
/// of port it calls (its *audience*), so a port broken into learns nothing that opens any other
/// kind of port, and never the secret itself.
///
/// `spd1.<hex HMAC-SHA-256(secret, "speedy cluster credential v1|<audience>")>`, sent as
/// `Authorization: Bearer …`. A port with one shared cluster secret computes the credential for
/// its own kind; a port with a role table (``SpeedyCore/RoleTable``) finds its SHA-256 there.
public enum ClusterCredential {
    private static let prefix = "spd1."
    private static let context = "speedy cluster credential v1|"

    /// The credential `secret`'s holder sends to ports of kind `audience`.
    public static func token(_ secret: ClusterSecret, for audience: ClusterRole) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Array((context + audience.rawValue).utf8), using: SymmetricKey(data: Array(secret.value.utf8)))
        return prefix + Array(mac).hexString
    }

    /// The `Authorization` value carrying ``token(_:for:)``.
    public static func authorization(_ secret: ClusterSecret, for audience: ClusterRole) -> String {
        "Bearer " + token(secret, for: audience)
    }
}

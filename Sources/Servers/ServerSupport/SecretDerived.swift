import SpeedyCore
import Synchronization

/// What a ring's accepted secrets derive (ticket keys, credentials for a kind of port), computed
/// once per secret file rather than once per request, and again when SIGHUP changed the secrets.
final class SecretDerived<Value: Sendable>: Sendable {
    private let secrets: ClusterSecretRing
    private let derive: @Sendable (ClusterSecret) -> Value
    private let cache = Mutex<(secrets: [ClusterSecret], values: [Value])>(([], []))

    init(_ secrets: ClusterSecretRing, derive: @escaping @Sendable (ClusterSecret) -> Value) {
        self.secrets = secrets
        self.derive = derive
    }

    /// One value per accepted secret, the sent one's first.
    var values: [Value] {
        let accepted = secrets.accepted
        return cache.withLock { cache in
            if cache.secrets != accepted { cache = (accepted, accepted.map(derive)) }
            return cache.values
        }
    }
}

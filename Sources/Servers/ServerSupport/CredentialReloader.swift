import Logging
import ServiceLifecycle
import SpeedyCore
import UnixSignals

/// Re-reads a role's credentials on SIGHUP: the cluster secret file (one secret, or the old and
/// the new while rotating), the role table (if any) and the port's TLS certificate and key, then whatever else the role
/// re-reads (`then`). What cannot be read is logged and the credentials held are kept, so a
/// half-written file never locks a role out. The one SIGHUP handler of a role's process.
struct CredentialReloader: Service {
    let role: String
    let secrets: ClusterSecretRing?
    /// The role table, when the cluster gives each role its own secret.
    var roles: RoleTableFile? = nil
    let certificate: ServerCertificate?
    let then: @Sendable () async -> Void
    let logger: Logger

    func run() async throws {
        // Trapped even with nothing to re-read: SIGHUP must never stop a server (it would by default).
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            reload()
            await then()
        }
    }

    /// One re-read, as SIGHUP asks for.
    func reload() {
        if let secrets, let path = secrets.path {
            do {
                // With a role table, a first secret the table does not list would lock the role out.
                let count = try secrets.reload { [roles] in roles?.refusal(sending: $0) }
                logger.notice("re-read the cluster secret file \(path): the \(role) accepts \(count) secret\(count == 1 ? "" : "s") and sends the first")
            } catch {
                logger.error("\(error); the \(role) keeps the secrets it had")
            }
        }
        if let roles, let path = roles.path {
            do {
                let count = try roles.reload()
                logger.notice("re-read the role table \(path): the \(role) knows \(count) role credential\(count == 1 ? "" : "s")")
            } catch {
                logger.error("\(error); the \(role) keeps the role table it had")
            }
        }
        if let certificate {
            do {
                try certificate.reload()
                logger.notice("re-read the TLS certificate \(certificate.files.certificate): new connections get it")
            } catch {
                logger.error("cannot re-read the TLS certificate \(certificate.files.certificate) and key \(certificate.files.key): \(error); the \(role) keeps serving the one it had")
            }
        }
    }
}

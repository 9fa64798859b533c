import Hummingbird
import HTTPTypes
import NIOCore
import SpeedyCore

/// Whether a role can do its work now, and if not, why.
public struct Readiness: Sendable, Equatable {
    /// Ready to serve.
    public var ready: Bool
    /// What is missing, for people, when not ready.
    public var reason: String?

    /// Ready.
    public static let ready = Readiness(ready: true, reason: nil)

    /// Not ready, because of `reason`.
    public static func notReady(_ reason: String) -> Readiness { Readiness(ready: false, reason: reason) }

    /// Creates a readiness.
    public init(ready: Bool, reason: String?) {
        self.ready = ready
        self.reason = reason
    }
}

/// `GET /healthz` (the process answers) and `GET /readyz` (it can do its work: 200, or 503 with
/// the reason), open without credentials so supervisors and load balancers can probe; they say
/// nothing about the cluster's data.
public enum HealthRoutes {
    /// Paths answered without credentials.
    public static let paths: Set<String> = ["/healthz", "/readyz"]

    /// Adds both routes to `router`; `readiness` is asked on every `/readyz`.
    public static func register<Context: RequestContext>(on router: Router<Context>, readiness: @escaping @Sendable () async -> Readiness) {
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let state = await readiness()
            let text = state.ready ? "ready\n" : "not ready: \(state.reason ?? "unknown")\n"
            return Response(
                status: state.ready ? .ok : .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text)))
        }
    }
}

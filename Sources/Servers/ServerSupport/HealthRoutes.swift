import Hummingbird
import HTTPTypes
import NIOCore
import SpeedyCore
import Synchronization

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
    /// Those and the older `/v1/health`: what the cluster secret never guards (made once, as
    /// every internal request asks).
    public static let openPaths: Set<String> = paths.union(["/v1/health"])

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

/// A role's readiness, worked out at most once per `maxAge` however often it is asked: probes
/// from load balancers and the role's heartbeat share one answer, so neither can hammer what
/// the check asks (the metaserver, the master).
public final class ReadinessCheck: Sendable {
    private struct State {
        var value: Readiness?
        var at: ContinuousClock.Instant?
        var running: Task<Readiness, Never>?
    }

    private let check: @Sendable () async -> Readiness
    private let maxAge: Duration
    private let state = Mutex(State())

    /// Checks with `check`, keeping each answer for `maxAge`.
    public init(maxAge: Duration = .seconds(1), check: @escaping @Sendable () async -> Readiness) {
        self.check = check
        self.maxAge = maxAge
    }

    /// The readiness now: the last answer while fresh, else a new one (callers that come while
    /// it is worked out wait for the same one).
    public func current() async -> Readiness {
        if let fresh = fresh() { return fresh }
        return await refresh().value
    }

    /// The last answer while it is younger than `maxAge`.
    private func fresh() -> Readiness? {
        state.withLock { s in
            guard let value = s.value, let at = s.at, ContinuousClock.now - at < maxAge else { return nil }
            return value
        }
    }

    /// The last answer without waiting, starting a new check in the background when it is
    /// stale; "not checked yet" before the first.
    public func latest() -> Readiness {
        if let fresh = fresh() { return fresh }
        _ = refresh()
        return state.withLock { $0.value } ?? .notReady("not checked yet")
    }

    private func refresh() -> Task<Readiness, Never> {
        state.withLock { s in
            if let running = s.running { return running }
            let task = Task {
                let value = await self.check()
                self.state.withLock {
                    $0.value = value
                    $0.at = .now
                    $0.running = nil
                }
                return value
            }
            s.running = task
            return task
        }
    }
}

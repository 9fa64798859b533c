import HTTPTypes
import Hummingbird
import ServerSupport
import Synchronization

/// Per-client request rate limiting: a token bucket per client address, `rate` requests a second
/// with bursts of `burst`. A request over the limit gets 429 TOOMANYREQUESTS with Retry-After;
/// it runs before the credential check, so password guessing is limited too.
final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    let rate: Double
    let burst: Double
    private struct Table {
        var buckets: [String: Bucket] = [:]
        var pruned: ContinuousClock.Instant = .now
    }

    private let table = Mutex(Table())

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = max(burst, 1)
    }

    /// Takes one token for `client`; nil when allowed, else the seconds until one is free.
    func take(_ client: String, now: ContinuousClock.Instant = .now) -> Int? {
        table.withLock { table in
            // Full buckets are forgotten once a second at most, so the table does not grow with
            // every address seen (a full bucket and a missing one behave the same).
            if table.buckets.count > 10_000, now - table.pruned > .seconds(1) {
                table.pruned = now
                table.buckets = table.buckets.filter { now - $0.value.updated < .seconds(burst / rate) }
            }
            var bucket = table.buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + seconds * rate)
            bucket.updated = now
            defer { table.buckets[client] = bucket }
            guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))) }
            bucket.tokens -= 1
            return nil
        }
    }
}

struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = RegistryRequestContext
    let limiter: RateLimiter

    /// Probes and scrapes are not counted: a load balancer or Prometheus behind the same address
    /// as busy clients must not see a healthy registry as down. They cost next to nothing, and
    /// `/metrics` asks for the cluster secret first. Compared as the router routes the path, so
    /// the exemption covers exactly the routes it names.
    static let exempt: Set<String> = HealthRoutes.paths.union(["/metrics", "/health"])

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if !Self.exempt.contains(request.routedPath), let wait = limiter.take(context.clientNetwork) {
            var error = OCIError(.tooManyRequests, "more than \(limiter.rate) requests a second from \(context.clientAddress); retry in \(wait) s")
            error.headers[.retryAfter] = String(wait)
            throw error
        }
        return try await next(request, context)
    }
}

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
    private let buckets = Mutex<[String: Bucket]>([:])

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = max(burst, 1)
    }

    /// Takes one token for `client`; nil when allowed, else the seconds until one is free.
    func take(_ client: String, now: ContinuousClock.Instant = .now) -> Int? {
        buckets.withLock { buckets in
            // Forget full buckets now and then, so the table does not grow with every address seen.
            if buckets.count > 50_000 {
                buckets = buckets.filter { now - $0.value.updated < .seconds(burst / rate) }
            }
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(burst, bucket.tokens + seconds * rate)
            bucket.updated = now
            defer { buckets[client] = bucket }
            guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))) }
            bucket.tokens -= 1
            return nil
        }
    }
}

struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = RegistryRequestContext
    let limiter: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let wait = limiter.take(context.clientAddress) {
            var error = OCIError(.tooManyRequests, "TOOMANYREQUESTS", "more than \(limiter.rate) requests a second from \(context.clientAddress); retry in \(wait) s")
            error.headers[.retryAfter] = String(wait)
            throw error
        }
        return try await next(request, context)
    }
}

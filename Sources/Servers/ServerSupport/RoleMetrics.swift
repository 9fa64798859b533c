import Hummingbird
import HTTPTypes
import CoreMetrics
import Metrics
import NIOCore
import Prometheus
import Synchronization

/// The process's Prometheus registry behind swift-metrics: every `Counter`, `Timer` and `Gauge`
/// a role makes lands in it, and `GET /metrics` renders it (docs/metrics.md lists them all).
public enum RoleMetrics {
    private static let installed = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Latency buckets, from a cached metadata read to a chunk crossing a slow link.
    public static let durationBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    /// Installs the registry as the swift-metrics backend, once per process; later calls return
    /// the same registry. A process that never calls it (an in-process test) records nothing.
    @discardableResult
    public static func bootstrap() -> PrometheusCollectorRegistry {
        installed.withLock { installed in
            if let installed { return installed }
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.defaultDurationHistogramBuckets = durationBuckets
            MetricsSystem.bootstrap(factory)
            installed = registry
            return registry
        }
    }

    /// Every metric of the process in the Prometheus text format, as `/metrics` serves it.
    public static func exposition() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64 << 10)
        bootstrap().emit(into: &bytes)
        return bytes
    }

    /// Adds `GET /metrics` to `router`, in the Prometheus text format. `collect` runs first, to
    /// set the gauges that are read off the role's state rather than counted as things happen
    /// (every role's `speedy_process_resident_bytes` is set here).
    /// The route sits behind whatever guards the router (the cluster secret where one is set).
    public static func register<Context: RequestContext>(on router: Router<Context>, collect: @escaping @Sendable () async -> Void = {}) {
        bootstrap()
        router.get("/metrics") { _, _ -> Response in
            Gauge(label: "speedy_process_resident_bytes").record(RoleHeartbeat.residentBytes())
            await collect()
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: exposition())))
        }
    }
}

extension Metrics.Timer {
    /// Records the time from `start` to now.
    public func recordElapsed(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
    }
}

/// Gauges read off a role's state at each scrape. A label set missing from a scrape (a server
/// removed, a role forgotten, a volume compacted away) is dropped from `/metrics`, so an alert
/// on its last value does not fire forever.
public final class ScrapedGauges: Sendable {
    /// One gauge's value in this scrape.
    public struct Reading: Sendable {
        public var label: String
        public var dimensions: [(String, String)]
        public var value: Double

        /// A reading of `label` with `dimensions`.
        public init(_ label: String, _ dimensions: [(String, String)] = [], _ value: Double) {
            self.label = label
            self.dimensions = dimensions
            self.value = value
        }

        var key: [String] { [label] + dimensions.flatMap { [$0.0, $0.1] } }
    }

    private let shown = Mutex<[[String]: Reading]>([:])

    /// No gauges yet.
    public init() { RoleMetrics.bootstrap() }

    /// Sets every reading and drops the gauges of the last scrape that have none now.
    public func publish(_ readings: [Reading]) {
        var now: [[String]: Reading] = [:]
        for reading in readings {
            Gauge(label: reading.label, dimensions: reading.dimensions).record(reading.value)
            now[reading.key] = reading
        }
        let gone = shown.withLock { shown in
            defer { shown = now }
            return shown.filter { now[$0.key] == nil }.map(\.value)
        }
        for reading in gone { Gauge(label: reading.label, dimensions: reading.dimensions).destroy() }
    }
}

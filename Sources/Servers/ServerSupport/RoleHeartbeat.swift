import Logging
import ServiceLifecycle
import SpeedyClients
import SpeedyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Tells the master, every interval, that an imageserver, metaserver or tracker is alive and
/// what it is doing (``RoleReport``), so `chunktool status` and the console show it and mark it
/// down when it goes silent. A tracker's reports carry its swarm (``RoleReport/swarm``).
public final class RoleHeartbeat: Service, Sendable {
    let role: FrontRole
    let requestedId: String?
    let master: MasterClient
    let tally: RequestTally
    let interval: Mutex<Duration>
    let openUploads: @Sendable () -> UInt64
    let readiness: ReadinessCheck
    let logger: Logger
    let swarm: @Sendable () -> SwarmSummary?
    let started = ContinuousClock.now
    private let address = Mutex<HostPort?>(nil)
    private let failing = Mutex(false)

    /// - Parameters:
    ///   - id: the id to report; nil reports `role@HOST:PORT` of the bound address.
    ///   - openUploads: upload bodies streaming in now (an imageserver), or open upload sessions (a metaserver).
    ///   - swarm: a tracker's swarm now; nil for every other role.
    public init(
        role: FrontRole, id: String?, master: MasterClient, tally: RequestTally, interval: Duration = .seconds(1),
        openUploads: @escaping @Sendable () -> UInt64 = { 0 }, readiness: ReadinessCheck, logger: Logger,
        swarm: @escaping @Sendable () -> SwarmSummary? = { nil }
    ) {
        self.role = role
        self.requestedId = id
        self.master = master
        self.tally = tally
        self.interval = Mutex(interval)
        self.openUploads = openUploads
        self.readiness = readiness
        self.logger = logger
        self.swarm = swarm
    }

    /// Records the address the server listens on (heartbeats start once it is known). An
    /// address on every interface is reported with the host's name.
    public func listening(at bound: HostPort) {
        let host = bound.host == "0.0.0.0" || bound.host == "::" ? Self.hostName() : bound.host
        address.withLock { $0 = HostPort(host: host, port: bound.port) }
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if let report = report() { await send(report) }
            let interval = self.interval.withLock { $0 }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
        // Stopping cleanly: say goodbye, so the master does not show a role taken out of
        // service as down (one that dies is shown down, and dropped after an hour).
        if var last = report() {
            last.leaving = true
            _ = try? await master.roleHeartbeat(last)
        }
    }

    /// The report now; nil until the server listens. Readiness is the last one worked out: a
    /// slow check (a metaserver that does not answer) must not hold the heartbeat past the
    /// master's down timeout.
    func report() -> RoleReport? {
        guard let addr = address.withLock({ $0 }) else { return nil }
        let state = readiness.latest()
        var report = RoleReport(
            role: role, id: requestedId ?? "\(role.rawValue)@\(addr)", addr: addr.description, version: SpeedyVersion.current,
            uptimeMs: UInt64((ContinuousClock.now - started).milliseconds),
            requests: tally.requests.load(ordering: .relaxed), clientErrors: tally.clientErrors.load(ordering: .relaxed),
            serverErrors: tally.serverErrors.load(ordering: .relaxed), bytesIn: tally.bytesIn.load(ordering: .relaxed),
            bytesOut: tally.bytesOut.load(ordering: .relaxed), openUploads: openUploads(), residentBytes: Self.residentBytes(),
            ready: state.ready, notReadyReason: state.reason.map { String($0.prefix(RoleReport.maxText)) })
        report.swarm = swarm()
        return report
    }

    private func send(_ report: RoleReport) async {
        do {
            let reply = try await master.roleHeartbeat(report)
            // The master sets the pace, within reason.
            let asked = Duration.milliseconds(Int64(clamping: min(reply.intervalMs, 10_000)))
            interval.withLock { $0 = max(.milliseconds(100), asked) }
            if failing.withLock({ $0 }) { logger.notice("heartbeats to the master go through again") }
            failing.withLock { $0 = false }
        } catch {
            // Said once per outage, not once a second.
            if !failing.withLock({ $0 }) { logger.warning("heartbeat to the master failed: \(error)") }
            failing.withLock { $0 = true }
        }
    }

    /// Resident memory of this process, from /proc/self/statm; 0 where it cannot be read.
    public static func residentBytes() -> UInt64 {
        let fd = open("/proc/self/statm", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return 0 }
        let fields = String(decoding: buffer[..<count], as: UTF8.self).split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func hostName() -> String {
        var name = [CChar](repeating: 0, count: 256)
        guard gethostname(&name, name.count) == 0 else { return "localhost" }
        return String(cString: name)
    }
}

import SpeedyCore

/// The imageservers and metaservers the master hears from, built from their heartbeats: plain
/// values and pure functions of time, like ``ClusterMap``. Not saved: after a master restart
/// each role is back on the map with its next heartbeat, a second later.
public struct FrontRoleMap: Sendable {
    /// One role process as last heard from.
    public struct Entry: Sendable {
        public var report: RoleReport
        /// Milliseconds (monotonic) when the last heartbeat arrived.
        public var lastSeenMs: Int64
        public var isUp = true
        public var requestsPerSec = 0.0
        public var clientErrorsPerSec = 0.0
        public var serverErrorsPerSec = 0.0
        public var bytesInPerSec = 0.0
        public var bytesOutPerSec = 0.0
    }

    /// Something the event log should say.
    public enum Change: Sendable, Equatable {
        case joined(role: FrontRole, id: String, addr: String)
        case up(role: FrontRole, id: String)
        case down(role: FrontRole, id: String, silentMs: Int64)
        case left(role: FrontRole, id: String)

        /// The event-log entry.
        public var event: (kind: String, serverId: String, message: String) {
            switch self {
            case .joined(let role, let id, let addr): ("role-joined", id, "\(role.rawValue) \(id) joined at \(addr)")
            case .up(let role, let id): ("role-up", id, "\(role.rawValue) \(id) is up")
            case .down(let role, let id, let silentMs): ("role-down", id, "\(role.rawValue) \(id) is down (silent for \(silentMs) ms)")
            case .left(let role, let id): ("role-left", id, "\(role.rawValue) \(id) stopped and left the map")
            }
        }
    }

    /// Entries by role and id.
    public private(set) var entries: [String: Entry] = [:]

    /// Roles kept at most: ids are the reporters' word, and each is a metrics series.
    public static let capacity = 256

    /// Whether a report can be taken: from a role on the map, or while there is room.
    public func hasRoom(for report: RoleReport) -> Bool {
        entries[Self.key(report.role, report.id)] != nil || entries.count < Self.capacity
    }

    /// An empty map.
    public init() {}

    private static func key(_ role: FrontRole, _ id: String) -> String { role.rawValue + "/" + id }

    /// Takes a heartbeat that arrived at `nowMs` (monotonic milliseconds).
    public mutating func apply(_ report: RoleReport, nowMs: Int64) -> [Change] {
        let key = Self.key(report.role, report.id)
        if report.leaving == true {
            return entries.removeValue(forKey: key) == nil ? [] : [.left(role: report.role, id: report.id)]
        }
        guard var entry = entries[key] else {
            entries[key] = Entry(report: report, lastSeenMs: nowMs)
            return [.joined(role: report.role, id: report.id, addr: report.addr)]
        }
        var changes: [Change] = []
        if !entry.isUp { changes.append(.up(role: report.role, id: report.id)) }
        let previous = entry.report
        if let rate = CounterRate(uptimeMs: report.uptimeMs, previousUptimeMs: previous.uptimeMs) {
            entry.requestsPerSec = rate.of(report.requests, previous.requests)
            entry.clientErrorsPerSec = rate.of(report.clientErrors, previous.clientErrors)
            entry.serverErrorsPerSec = rate.of(report.serverErrors, previous.serverErrors)
            entry.bytesInPerSec = rate.of(report.bytesIn, previous.bytesIn)
            entry.bytesOutPerSec = rate.of(report.bytesOut, previous.bytesOut)
        } else {
            // The process restarted: its counters began again.
            (entry.requestsPerSec, entry.clientErrorsPerSec, entry.serverErrorsPerSec, entry.bytesInPerSec, entry.bytesOutPerSec) = (0, 0, 0, 0, 0)
        }
        entry.report = report
        entry.lastSeenMs = nowMs
        entry.isUp = true
        entries[key] = entry
        return changes
    }

    /// A role silent this long is dropped from the map: it was taken out of service (one that
    /// comes back joins again).
    public static let forgetAfterMs: Int64 = 3_600_000

    /// Marks roles silent for longer than `downAfterMs` as down, and drops those silent past
    /// ``forgetAfterMs``.
    public mutating func expire(nowMs: Int64, downAfterMs: Int64) -> [Change] {
        entries = entries.filter { nowMs - $0.value.lastSeenMs <= Self.forgetAfterMs }
        var changes: [Change] = []
        for (key, entry) in entries.sorted(by: { $0.key < $1.key }) where entry.isUp && nowMs - entry.lastSeenMs > downAfterMs {
            entries[key]!.isUp = false
            (entries[key]!.requestsPerSec, entries[key]!.clientErrorsPerSec, entries[key]!.serverErrorsPerSec) = (0, 0, 0)
            (entries[key]!.bytesInPerSec, entries[key]!.bytesOutPerSec) = (0, 0)
            changes.append(.down(role: entry.report.role, id: entry.report.id, silentMs: nowMs - entry.lastSeenMs))
        }
        return changes
    }

    /// The entries of `role`, by id.
    public func snapshots(of role: FrontRole, nowMs: Int64) -> [RoleSnapshot] {
        entries.values.filter { $0.report.role == role }.sorted { $0.report.id < $1.report.id }.map { entry in
            let r = entry.report
            var snapshot = RoleSnapshot(
                id: r.id, addr: r.addr, status: entry.isUp ? .up : .down, lastHeartbeatAgeMs: nowMs - entry.lastSeenMs,
                version: r.version, uptimeMs: r.uptimeMs, ready: entry.isUp && r.ready,
                notReadyReason: entry.isUp ? r.notReadyReason : "no heartbeat", requestsPerSec: entry.requestsPerSec,
                clientErrorsPerSec: entry.clientErrorsPerSec, serverErrorsPerSec: entry.serverErrorsPerSec,
                bytesInPerSec: entry.bytesInPerSec, bytesOutPerSec: entry.bytesOutPerSec, openUploads: r.openUploads,
                residentBytes: r.residentBytes)
            // A silent tracker's last swarm is no longer the swarm.
            snapshot.swarm = entry.isUp ? r.swarm : nil
            return snapshot
        }
    }
}

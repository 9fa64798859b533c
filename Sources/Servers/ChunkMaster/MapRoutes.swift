import CoreMetrics
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore

/// The part of the master's API the cluster runs on (docs/api.md): chunkservers' heartbeats, the
/// cluster map, file id leases and the event log. Answered by the leader only (``LeaderOnlyMiddleware``).
struct MapRoutes: Sendable {
    let master: ChunkMaster

    func register(on router: Router<SpeedyRequestContext>) {
        router.post("/v1/heartbeat") { request, _ in
            let report = try await request.decodeJSON(HeartbeatReport.self)
            master.metrics.heartbeats.increment()
            guard !report.serverId.isEmpty, HostPort(parsing: report.addr) != nil else {
                throw APIError.badRequest("heartbeat needs a server id and an address HOST:PORT")
            }
            if let zone = report.zone, !FailureZone.isValidName(zone) { throw APIError.badRequest(AdminRoutes.badZone) }
            do {
                guard let reply = try await master.heartbeat(report) else { throw APIError.notLeader("this master no longer leads; ask again") }
                return try JSONResponse.make(reply)
            } catch let error as ClusterMap.AdminError {
                throw error.apiError
            }
        }
        router.get("/v1/cluster") { request, _ in
            let history = min(try request.queryInteger("history", as: Int.self) ?? 0, ClusterMap.historyLength)
            var snapshot = master.snapshot(historySeconds: max(0, history))
            if let events = try request.queryInteger("events", as: Int.self), events > 0 {
                snapshot.recentEvents = try await master.store.latestEvents(limit: min(events, 1000))
            }
            return try JSONResponse.make(snapshot)
        }
        router.post("/v1/fileids") { request, _ in
            let count = try request.queryInteger("count", as: UInt64.self) ?? 1000
            guard (1...FileIdAllocator.maxLease).contains(count) else {
                throw APIError.badRequest("count must be between 1 and \(FileIdAllocator.maxLease)")
            }
            let (isLeader, fence) = master.leadership.lead
            guard isLeader else { throw APIError.notLeader("this master no longer leads; ask again") }
            do {
                let lease = try await master.allocator.lease(count: count, fence: fence)
                master.metrics.fileIdsLeased.increment(by: Int(lease.count))
                return try JSONResponse.make(lease)
            } catch MasterStoreError.notLeader(let why) {
                throw APIError.notLeader("this master no longer leads (\(why)); ask again")
            } catch {
                master.logger.error("file id lease failed: \(error)")
                throw APIError(.leaseFailed, "cannot persist the file id high-water mark: \(error)")
            }
        }
        router.get("/v1/events") { request, _ in
            let after = try request.queryInteger("after", as: Int64.self) ?? 0
            let limit = min(max(try request.queryInteger("limit", as: Int.self) ?? 100, 1), 1000)
            return try JSONResponse.make(EventPage(events: try await master.store.events(after: after, limit: limit)))
        }
    }
}

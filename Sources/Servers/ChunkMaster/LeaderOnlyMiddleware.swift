import HTTPTypes
import Hummingbird
import ServerSupport
import SpeedyCore

/// Lets only the leading master serve the API: a standby's map is not fed by heartbeats and it
/// may not hand out file ids, so it answers every `/v1/` call but `/v1/health` with 503
/// `NOT_LEADER` and the leader's address in `X-Speedy-Leader` (``MasterClient`` moves on
/// to the next master it was given). Probes and `/metrics` stay served, so a standby can be watched.
///
/// A master that has just taken the lead knows its servers only as the database remembers them,
/// all down until they report. Until they have (see ``ChunkMaster/isWarm``), it takes
/// heartbeats, reports and file id leases, but answers the map and the administration as a
/// standby would: imageservers keep placing chunks by the map they had, rather than finding
/// every group down, and no operator removes a live server that merely has not reported yet.
struct LeaderOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    let leadership: MasterLeadership
    /// Whether the leader's map is whole again after a takeover.
    let isWarm: @Sendable () -> Bool

    /// What a leader still taking over does not answer: what reads or changes the map.
    static func needsWholeMap(_ path: String) -> Bool {
        path == "/v1/cluster" || path.hasPrefix("/v1/servers") || path.hasPrefix("/v1/groups")
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // As the router matches it: `//v1//servers` is `/v1/servers` here too.
        let path = request.routedPath
        guard path.hasPrefix("/v1/"), path != "/v1/health" else { return try await next(request, context) }
        let why: String
        if leadership.isLeader {
            guard Self.needsWholeMap(path), !isWarm() else { return try await next(request, context) }
            why = "this master has just taken the lead and waits for its servers to report; try again in a second"
        } else {
            why = "this master is a standby; " + (leadership.leaderURL.map { "the leader is \($0)" } ?? "no master leads right now, try again in a few seconds")
        }
        let leader = leadership.leaderURL
        var response = try APIError.notLeader(why).response(from: request, context: context)
        if let leader, let name = HTTPField.Name(SpeedyHeader.leader) { response.headers[name] = leader }
        response.headers[.retryAfter] = "1"
        return response
    }
}

extension APIError {
    /// 503 `NOT_LEADER`: ask another master (clients given several move on to the next).
    static func notLeader(_ message: String) -> APIError {
        APIError(.notLeader, message)
    }
}

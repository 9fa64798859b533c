import HTTPTypes
import Hummingbird
import ServerSupport
import SpeedyCore

/// Lets only the leading master serve the API: a standby's map is not fed by heartbeats and it
/// may not hand out file ids, so it answers every `/v1/` call but `/v1/health` with 503
/// `NOT_LEADER` and the leader's address in `X-Speedy-Leader`, which ``SpeedyCore/MasterClient``
/// follows. Probes and `/metrics` stay served, so a standby can be watched.
struct LeaderOnlyMiddleware<Context: RequestContext>: RouterMiddleware {
    let leadership: MasterLeadership

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard !leadership.isLeader, path.hasPrefix("/v1/"), path != "/v1/health" else { return try await next(request, context) }
        let leader = leadership.leaderURL
        var response = try APIError(
            .serviceUnavailable, code: SpeedyHeader.notLeaderCode,
            "this master is a standby; " + (leader.map { "the leader is \($0)" } ?? "no master leads right now, try again in a few seconds")
        ).response(from: request, context: context)
        if let leader, let name = HTTPField.Name(SpeedyHeader.leader) { response.headers[name] = leader }
        response.headers[.retryAfter] = "1"
        return response
    }
}

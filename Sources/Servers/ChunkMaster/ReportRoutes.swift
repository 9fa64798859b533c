import Hummingbird
import HTTPTypes
import Logging
import ServerSupport
import SpeedyCore

/// What other processes report to the master (docs/api.md): imageservers' and metaservers'
/// heartbeats, operator jobs' progress, and events for the log. Each report is bounded and its
/// texts made printable before the master keeps it.
struct ReportRoutes: Sendable {
    let master: ChunkMaster

    func register(on router: Router<SpeedyRequestContext>) {
        router.post("/v1/roles/heartbeat") { request, _ in
            let report = try await request.decodeJSON(RoleReport.self, limit: 16 << 10)
            let texts = [report.id, report.addr, report.version, report.notReadyReason ?? ""]
            guard !report.id.isEmpty, HostPort(parsing: report.addr) != nil, texts.allSatisfy({ $0.count <= RoleReport.maxText }) else {
                throw APIError.badRequest("a role heartbeat needs an id and an address HOST:PORT, each at most \(RoleReport.maxText) characters")
            }
            guard let reply = await master.roleHeartbeat(report) else {
                throw APIError(.rolesFull, "the master keeps at most \(FrontRoleMap.capacity) imageservers and metaservers")
            }
            return try JSONResponse.make(reply)
        }
        router.post("/v1/jobs") { request, _ in
            let report = try await request.decodeJSON(JobReport.self, limit: 16 << 10)
            let texts = [report.id, report.target, report.message ?? ""]
            guard JobReport.kinds.contains(report.kind), !report.id.isEmpty, texts.allSatisfy({ $0.count <= JobReport.maxText }),
                report.done >= 0, report.total >= 0
            else {
                throw APIError.badRequest(
                    "a job report needs a kind (\(JobReport.kinds.sorted().joined(separator: ", "))), an id, and texts of at most \(JobReport.maxText) characters")
            }
            await master.jobReport(report.cleaned, actor: AdminRoutes.actor(request))
            return try JSONResponse.make(Empty())
        }
        router.post("/v1/events") { request, _ in
            let report = try await request.decodeJSON(EventReport.self, limit: 16 << 10)
            guard EventReport.kinds.contains(report.kind) else {
                throw APIError.badRequest("event kind must be one of \(EventReport.kinds.sorted().joined(separator: ", "))")
            }
            guard !report.message.isEmpty, report.message.count <= EventReport.maxMessage, report.serverId.map({ $0.count <= 200 }) ?? true else {
                throw APIError.badRequest("an event needs a message of at most \(EventReport.maxMessage) characters")
            }
            let message = PrintableText.clean(report.message, limit: EventReport.maxMessage)
            master.logger.notice("\(message)")
            try await master.store.recordEvent(
                kind: report.kind, serverId: report.serverId.map { PrintableText.clean($0, limit: 200) }, group: report.group, message: message)
            return try JSONResponse.make(Empty())
        }
    }
}

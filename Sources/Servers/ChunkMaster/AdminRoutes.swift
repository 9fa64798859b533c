import Hummingbird
import HTTPTypes
import ServerSupport
import SpeedyCore
import Synchronization

/// The administrative part of the master's API (docs/api.md): groups and servers as operators
/// change them. Every change lands in the event log.
struct AdminRoutes: Sendable {
    let master: ChunkMaster

    func register(on router: Router<SpeedyRequestContext>) {
        router.post("/v1/groups") { request, _ in
            let body = try await request.decodeJSON(GroupCreation.self)
            return try JSONResponse.make(try await admin(group: body.id, request) { map throws(ClusterMap.AdminError) in try map.addGroup(body.id) }, status: .created)
        }
        router.delete("/v1/groups/{id}") { request, context in
            let id = try Self.groupId(context)
            do throws(ChunkMaster.AdministrationError) {
                try await master.removeGroup(id, by: Self.actor(request))
            } catch {
                throw error.apiError
            }
            return try JSONResponse.make(Empty())
        }
        // A drain (docs/recovery.md): the group takes no new chunks; DELETE lets it take them again.
        router.post("/v1/groups/{id}/drain") { request, context in
            let id = try Self.groupId(context)
            let now = currentTimeMillis()
            return try JSONResponse.make(try await admin(group: id, request) { map throws(ClusterMap.AdminError) in try map.setDraining(id, sinceMs: now) })
        }
        router.delete("/v1/groups/{id}/drain") { request, context in
            let id = try Self.groupId(context)
            return try JSONResponse.make(try await admin(group: id, request) { map throws(ClusterMap.AdminError) in try map.setDraining(id, sinceMs: nil) })
        }
        router.post("/v1/servers") { request, _ in
            let body = try await request.decodeJSON(ServerRegistration.self)
            guard !body.id.isEmpty, HostPort(parsing: body.addr) != nil else {
                throw APIError.badRequest("a server needs an id and an address HOST:PORT")
            }
            if let zone = body.zone, !FailureZone.isValidName(zone) { throw APIError.badRequest(Self.badZone) }
            let allowSameZone = master.configuration.allowSameZone
            return try JSONResponse.make(
                try await admin(group: body.group, request) { map throws(ClusterMap.AdminError) in try map.register(body, allowSameZone: allowSameZone) },
                status: .created)
        }
        router.post("/v1/servers/{id}/status") { request, context in
            let id = context.parameters.get("id") ?? ""
            let body = try await request.decodeJSON(StatusSetting.self)
            let group = try groupOf(id)
            return try JSONResponse.make(try await admin(group: group, request) { map throws(ClusterMap.AdminError) in try map.setStatus(of: id, to: body.status) })
        }
        router.delete("/v1/servers/{id}") { request, context in
            let id = context.parameters.get("id") ?? ""
            let group = try groupOf(id)
            return try JSONResponse.make(try await admin(group: group, request) { map throws(ClusterMap.AdminError) in try map.retire(id) })
        }
    }

    private func groupOf(_ id: String) throws -> UInt32 {
        guard let group = master.groupOf(server: id) else {
            let retired = master.map.withLock { $0.isRetired(id) }
            throw (retired ? ClusterMap.AdminError.serverRetired(id) : .unknownServer(id)).apiError
        }
        return group
    }

    /// What a zone name that ``FailureZone/isValidName(_:)`` refuses is answered with.
    static let badZone = "a zone is 1 to \(FailureZone.maxLength) letters, digits, '.', '_' or '-'"

    /// The `{id}` of a group route.
    private static func groupId(_ context: SpeedyRequestContext) throws -> UInt32 {
        guard let id = context.parameters.get("id").flatMap(UInt32.init) else {
            throw APIError.badRequest("the group must be a whole number between 0 and \(UInt32.max)")
        }
        return id
    }

    /// Who sent the request, from its `X-Speedy-Actor` header.
    static func actor(_ request: Request) -> String? {
        SpeedyHeader.actor(from: HTTPField.Name(SpeedyHeader.actor).flatMap { request.headers[$0] })
    }

    private func admin(
        group: UInt32, _ request: Request, _ change: (inout ClusterMap) throws(ClusterMap.AdminError) -> [ClusterMap.Change]
    ) async throws -> GroupSnapshot {
        do {
            return try await master.administer(group: group, by: Self.actor(request), change)
        } catch {
            throw error.apiError
        }
    }
}

extension ChunkMaster.AdministrationError {
    /// The HTTP answer: the refusal's, or 503 when the change could not be saved.
    var apiError: APIError {
        switch self {
        case .refused(let refusal): refusal.apiError
        case .notSaved(let reason):
            APIError(.notSaved, "the change could not be saved in the master's database, so it was not made: \(reason)")
        case .notLeader: .notLeader("this master no longer leads, so the change was not made; ask the leader")
        }
    }
}

extension ClusterMap.AdminError {
    /// The HTTP answer: its code, with the status the code is declared with (404 for unknown
    /// names, 409 for conflicts, 400 for bad values).
    var apiError: APIError { APIError(code, description) }
}

import HTTPTypes
import SpeedyCore
import Synchronization

/// What a chunkserver lets a chunk ticket (``ChunkTicketKey``) do: `GET` or `HEAD` of exactly the
/// one chunk it names, `/v1/chunks/{group}/{fileId}`, before it expires; nothing else. Used by
/// ``ClusterSecretMiddleware`` for requests that carry `Authorization: SpeedyTicket <ticket>`
/// instead of the cluster secret.
public struct ChunkTicketGate: Sendable {
    /// Why a request with a ticket is refused.
    public enum Refusal: Error, Sendable, Equatable {
        /// 401: the ticket is malformed, forged or expired.
        case unauthorized(ChunkTicketError)
        /// 403: a good ticket used on another route, method or chunk; the reason, for the answer.
        case forbidden(String)
    }

    /// The keys tickets are checked with: one per accepted cluster secret.
    private let keys: @Sendable () -> [ChunkTicketKey]

    /// A gate checking tickets with `key`.
    public init(key: ChunkTicketKey) {
        keys = { [key] }
    }

    /// A gate checking tickets with the key of each secret `secrets` accepts: while the secret
    /// rotates, tickets signed under the old one and under the new one are both good.
    public init(secrets: ClusterSecretRing) {
        let derived = SecretDerived(secrets) { ChunkTicketKey(secret: $0) }
        keys = { derived.values }
    }

    /// A gate checking tickets with the imageservers' keys the role table lists (``RoleTable/ticketKeys``):
    /// `v2` tickets, which only an imageserver can sign.
    public init(roles: RoleTableFile) {
        let derived = Mutex<(table: RoleTable?, keys: [ChunkTicketKey])>((nil, []))
        keys = {
            let table = roles.table
            return derived.withLock { cache in
                if cache.table != table { cache = (table, table.ticketKeys.compactMap(ChunkTicketKey.init(verifying:))) }
                return cache.keys
            }
        }
    }

    /// The ticket an `Authorization` value carries (`SpeedyTicket <ticket>`; the scheme alone,
    /// its value trimmed away, carries an empty one), or nil when it names another scheme.
    public static func ticket(in authorization: String?) -> String? {
        guard let authorization else { return nil }
        if authorization == ChunkMap.ticketScheme { return "" }
        guard authorization.hasPrefix(ChunkMap.ticketScheme + " ") else { return nil }
        return String(authorization.dropFirst(ChunkMap.ticketScheme.count + 1))
    }

    /// The chunk a request reads, when it is a `GET` or `HEAD` of `/v1/chunks/{group}/{fileId}`
    /// (`routed` is its ``RoutedPath``); nil for every other method and route. The numbers are
    /// read as the chunk route reads them, so the chunk compared is the chunk served.
    public static func chunkRead(method: HTTPRequest.Method, routed: String) -> ChunkKey? {
        guard method == .get || method == .head else { return nil }
        let parts = routed.split(separator: "/")
        guard parts.count == 4, parts[0] == "v1", parts[1] == "chunks",
            let group = UInt32(String(parts[2])), let fileId = UInt64(String(parts[3]))
        else { return nil }
        return ChunkKey(group: group, fileId: fileId)
    }

    /// Lets the request through when `ticket` checks out at `nowMs` and is used to read the very
    /// chunk it names; throws why not otherwise.
    public func admit(_ ticket: String, method: HTTPRequest.Method, routed: String, nowMs: Int64) throws(Refusal) {
        let granted = try verify(ticket, nowMs: nowMs)
        guard let target = Self.chunkRead(method: method, routed: routed) else {
            throw .forbidden("a chunk ticket allows only GET or HEAD of its chunk (/v1/chunks/{group}/{fileId})")
        }
        guard target == granted else { throw .forbidden(ChunkTicketError.otherChunk.description) }
    }

    /// The chunk `ticket` grants under one of the keys; else the refusal of the first key, or
    /// ``ChunkTicketError/expired`` when some key signed it.
    private func verify(_ ticket: String, nowMs: Int64) throws(Refusal) -> ChunkKey {
        var refusal: ChunkTicketError?
        for key in keys() {
            do {
                return try key.verify(ticket, nowMs: nowMs)
            } catch {
                if refusal == nil || error == .expired { refusal = error }
            }
        }
        throw .unauthorized(refusal ?? .badSignature)
    }
}

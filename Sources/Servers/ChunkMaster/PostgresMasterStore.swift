import Logging
import PostgresNIO
import SpeedyPostgres
import ServerSupport
import SpeedyCore

/// The master's ``MasterStore`` on PostgreSQL (`speedy chunkmaster --database postgresql://…`), so
/// several masters can share one database, one leading at a time under the lease in
/// `master_lease`. Tables are prefixed `master_`, so the metaservers may use the same database.
/// Every write is one serializable transaction, retried on conflict (``ServerSupport/PostgresBackend``).
public final class PostgresMasterStore: MasterStore {
    let database: PostgresBackend
    let logger: Logger

    /// Connects to `url` and migrates the schema forward.
    /// - Throws: when the database cannot be reached or its schema is newer than this build's.
    public init(url: PostgresURL, logger: Logger) async throws {
        self.logger = logger
        database = try await PostgresBackend.open(url, component: "chunkmaster", steps: Self.schema, logger: logger)
    }

    /// Closes the connections.
    public func close() async { await database.close() }

    /// Schema versions: version N is reached by running `schema[N - 1]`. Version 1 holds what
    /// SQLite's v1 to v5 hold (docs/api.md, "Master state").
    static let schema = [
        """
        CREATE TABLE master_groups (id BIGINT PRIMARY KEY, created_ms BIGINT NOT NULL, removed_ms BIGINT);
        CREATE TABLE master_servers (
            id TEXT COLLATE "C" PRIMARY KEY, group_id BIGINT NOT NULL REFERENCES master_groups(id), addr TEXT NOT NULL,
            first_seen_ms BIGINT NOT NULL, set_status TEXT, retired BOOLEAN NOT NULL DEFAULT FALSE, fenced_by TEXT);
        CREATE TABLE master_settings (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
        INSERT INTO master_settings (key, value) VALUES ('fileid_high_water', 1);
        CREATE TABLE master_events (
            id BIGSERIAL PRIMARY KEY, time_ms BIGINT NOT NULL, kind TEXT NOT NULL, server_id TEXT, group_id BIGINT, message TEXT NOT NULL);
        CREATE TABLE master_lease (
            id INTEGER PRIMARY KEY CHECK (id = 1), holder TEXT NOT NULL, url TEXT NOT NULL, term BIGINT NOT NULL,
            expires_at TIMESTAMPTZ NOT NULL);
        INSERT INTO master_lease (id, holder, url, term, expires_at) VALUES (1, '', '', 0, '-infinity')
        """,
        // 2: SQLite's v6, when a group's drain was asked for.
        "ALTER TABLE master_groups ADD COLUMN draining_ms BIGINT",
    ]

    public func servers() async throws -> [StoredServer] {
        let logger = logger
        return try await database.statement { c in
            try await PostgresBackend.rows(
                c, "SELECT id, group_id, addr, set_status, fenced_by, retired FROM master_servers ORDER BY id",
                as: (String, Int64, String, String?, String?, Bool).self, logger: logger)
        }.map {
            StoredServer(
                id: $0.0, group: UInt32(truncatingIfNeeded: $0.1), addr: $0.2, setStatus: $0.3.flatMap(ServerStatus.init(rawValue:)),
                fencedBy: $0.4, retired: $0.5)
        }
    }

    public func groups() async throws -> [UInt32] {
        let logger = logger
        return try await database.statement { c in
            try await PostgresBackend.column(c, "SELECT id FROM master_groups WHERE removed_ms IS NULL ORDER BY id", as: Int64.self, logger: logger)
        }.map { UInt32(truncatingIfNeeded: $0) }
    }

    public func drainingGroups() async throws -> [UInt32: Int64] {
        let logger = logger
        let rows = try await database.statement { c in
            try await PostgresBackend.rows(
                c, "SELECT id, draining_ms FROM master_groups WHERE removed_ms IS NULL AND draining_ms IS NOT NULL", as: (Int64, Int64).self,
                logger: logger)
        }
        return Dictionary(uniqueKeysWithValues: rows.map { (UInt32(truncatingIfNeeded: $0.0), $0.1) })
    }

    public func save(_ changes: [ClusterMap.Change], fence: LeaderTerm?) async throws {
        guard changes.contains(where: \.isDurable) else { return }
        let logger = logger
        try await database.transaction { c in
            if let fence { try await Self.check(fence, c, logger: logger) }
            for change in changes { try await Self.apply(change, c, logger: logger) }
        }
    }

    /// Throws `.notLeader` unless `fence` holds the lease now. Run inside a serializable
    /// transaction, it makes the transaction conflict with a takeover that commits meanwhile.
    private static func check(_ fence: LeaderTerm, _ c: PostgresConnection, logger: Logger) async throws {
        let holds = try await PostgresBackend.count(
            c,
            """
            SELECT 1 FROM master_lease
            WHERE id = 1 AND holder = \(fence.holder) AND term = \(fence.term) AND expires_at > clock_timestamp()
            """, logger: logger)
        guard holds == 1 else { throw MasterStoreError.notLeader("term \(fence.term) of \(fence.holder) is over") }
    }

    /// Writes one change's durable part (nothing for live-only changes).
    private static func apply(_ change: ClusterMap.Change, _ c: PostgresConnection, logger: Logger) async throws {
        let now = currentTimeMillis()
        func addGroup(_ group: UInt32) async throws {
            // Adds a group, or brings back a removed one (a server joining it does too).
            try await c.query(
                "INSERT INTO master_groups (id, created_ms) VALUES (\(Int64(group)), \(now)) ON CONFLICT (id) DO UPDATE SET removed_ms = NULL",
                logger: logger)
        }
        func saveServer(_ id: String, _ group: UInt32, _ addr: String) async throws {
            try await addGroup(group)
            try await c.query(
                """
                INSERT INTO master_servers (id, group_id, addr, first_seen_ms) VALUES (\(id), \(Int64(group)), \(addr), \(now))
                ON CONFLICT (id) DO UPDATE SET group_id = excluded.group_id, addr = excluded.addr
                """, logger: logger)
        }
        switch change {
        case .serverJoined(let id, let group, let addr), .serverAdded(let id, let group, let addr):
            try await saveServer(id, group, addr)
        case .addressChanged(let id, let group, _, let to):
            try await saveServer(id, group, to)
        case .groupAdded(let group):
            try await addGroup(group)
        case .groupRemoved(let group):
            // A group made again later starts taking chunks.
            try await c.query("UPDATE master_groups SET removed_ms = \(now), draining_ms = NULL WHERE id = \(Int64(group))", logger: logger)
        case .drainSet(let group, let since):
            try await c.query("UPDATE master_groups SET draining_ms = \(since) WHERE id = \(Int64(group))", logger: logger)
        case .statusSet(let id, _, let to, _):
            try await c.query("UPDATE master_servers SET set_status = \(to?.rawValue), fenced_by = NULL WHERE id = \(id)", logger: logger)
        case .fenced(let id, _, let by):
            try await c.query("UPDATE master_servers SET set_status = 'OFFLINE', fenced_by = \(by) WHERE id = \(id)", logger: logger)
        case .serverRetired(let id, _):
            try await c.query(
                "UPDATE master_servers SET retired = TRUE, set_status = NULL, fenced_by = NULL WHERE id = \(id)", logger: logger)
        case .spareAssigned(let id, let group, _):
            try await c.query(
                "UPDATE master_servers SET group_id = \(Int64(group)), set_status = 'TRANSFERRING', fenced_by = NULL WHERE id = \(id)", logger: logger)
        case .serverUp, .serverDown, .statusChanged, .groupState, .errorsRose:
            break
        }
    }

    public func recordEvent(kind: String, serverId: String?, group: UInt32?, message: String) async throws {
        let logger = logger
        let now = currentTimeMillis()
        let groupId = group.map { Int64($0) }
        try await database.statement { c in
            try await c.query(
                "INSERT INTO master_events (time_ms, kind, server_id, group_id, message) VALUES (\(now), \(kind), \(serverId), \(groupId), \(message))",
                logger: logger)
        }
    }

    public func events(after: Int64, limit: Int) async throws -> [ClusterEvent] {
        try await events("SELECT id, time_ms, kind, server_id, group_id, message FROM master_events WHERE id > \(after) ORDER BY id LIMIT \(limit)")
    }

    public func latestEvents(limit: Int) async throws -> [ClusterEvent] {
        try await events("SELECT id, time_ms, kind, server_id, group_id, message FROM master_events ORDER BY id DESC LIMIT \(limit)")
    }

    private func events(_ query: PostgresQuery) async throws -> [ClusterEvent] {
        let logger = logger
        return try await database.statement { c in
            try await PostgresBackend.rows(c, query, as: (Int64, Int64, String, String?, Int64?, String).self, logger: logger)
        }.map {
            ClusterEvent(id: $0.0, timeMs: $0.1, kind: $0.2, serverId: $0.3, group: $0.4.map { UInt32(truncatingIfNeeded: $0) }, message: $0.5)
        }
    }

    /// Raises the high-water mark in one atomic update, so reservations never overlap. With
    /// `fence`, the lease row is read in the same transaction: a master whose term is over fails
    /// here (one that races a takeover may still commit, ordered before it, which is harmless:
    /// the new leader reserves above it).
    public func reserveFileIds(count: UInt64, fence: LeaderTerm?) async throws -> Range<UInt64> {
        guard count > 0, count <= UInt64(Int64.max) else { throw MasterStoreError.invalid("cannot reserve \(count) file ids") }
        let logger = logger
        let amount = Int64(count)
        let after = try await database.transaction { c in
            if let fence { try await Self.check(fence, c, logger: logger) }
            return try await PostgresBackend.column(
                c,
                """
                UPDATE master_settings SET value = value + \(amount)
                WHERE key = 'fileid_high_water' AND value <= \(Int64.max - amount) RETURNING value
                """, as: Int64.self, logger: logger
            ).first
        }
        guard let after else { throw MasterStoreError.invalid("file ids are exhausted") }
        return UInt64(after - amount)..<UInt64(after)
    }

    /// Claims the lease on the database's clock, so the masters' clocks need not agree.
    public func claimLeadership(holder: String, url: String, ttl: Duration) async throws -> Leadership {
        let logger = logger
        let seconds = Double(ttl.milliseconds) / 1000
        return try await database.transaction { c in
            let term = try await PostgresBackend.column(
                c,
                """
                UPDATE master_lease SET
                    term = CASE WHEN holder = \(holder) THEN term ELSE term + 1 END,
                    holder = \(holder), url = \(url), expires_at = clock_timestamp() + make_interval(secs => \(seconds))
                WHERE id = 1 AND (holder = \(holder) OR expires_at <= clock_timestamp())
                RETURNING term
                """, as: Int64.self, logger: logger
            ).first
            if let term { return .leader(term: term) }
            let leader = try await PostgresBackend.column(
                c, "SELECT url FROM master_lease WHERE id = 1 AND expires_at > clock_timestamp()", as: String.self, logger: logger
            ).first
            return .standby(leaderURL: leader)
        }
    }

    public func resign(holder: String) async throws {
        let logger = logger
        try await database.transaction { c in
            try await c.query("UPDATE master_lease SET expires_at = clock_timestamp() WHERE id = 1 AND holder = \(holder)", logger: logger)
        }
    }
}

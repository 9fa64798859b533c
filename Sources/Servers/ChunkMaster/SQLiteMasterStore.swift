import GRDB
import SpeedyCore

/// The master's ``MasterStore`` in SQLite (`DATA/master.sqlite`), the embedded default for one
/// master. Writes go through GRDB's single writer, so each call is one transaction that ran alone.
public final class SQLiteMasterStore: MasterStore {
    private let queue: DatabaseQueue

    /// Opens or creates the database at `path` and brings its schema up to date.
    public init(path: String) throws {
        var config = Configuration()
        config.busyMode = .timeout(5)
        queue = try DatabaseQueue(path: path, configuration: config)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "groups") { t in
                t.column("id", .integer).primaryKey()
                t.column("created_ms", .integer).notNull()
            }
            try db.create(table: "servers") { t in
                t.column("id", .text).primaryKey()
                t.column("group_id", .integer).notNull().references("groups")
                t.column("addr", .text).notNull()
                t.column("first_seen_ms", .integer).notNull()
            }
            try db.create(table: "settings") { t in
                t.column("key", .text).primaryKey()
                t.column("value", .integer).notNull()
            }
            try db.create(table: "events") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("time_ms", .integer).notNull()
                t.column("kind", .text).notNull()
                t.column("server_id", .text)
                t.column("group_id", .integer)
                t.column("message", .text).notNull()
            }
        }
        // v2: operators' status settings and removed servers.
        migrator.registerMigration("v2") { db in
            try db.alter(table: "servers") { t in
                t.add(column: "set_status", .text)
                t.add(column: "retired", .boolean).notNull().defaults(to: false)
            }
        }
        // v3: which replacement a fenced member was set OFFLINE for.
        migrator.registerMigration("v3") { db in
            try db.alter(table: "servers") { t in t.add(column: "fenced_by", .text) }
        }
        // v4: removed groups keep their row (removed servers still name them) with the time they went.
        migrator.registerMigration("v4") { db in
            try db.alter(table: "groups") { t in t.add(column: "removed_ms", .integer) }
        }
        // v5: the leader lease, for masters taking turns on one file (tests; production shares PostgreSQL).
        migrator.registerMigration("v5") { db in
            try db.create(table: "lease") { t in
                t.column("id", .integer).primaryKey()
                t.column("holder", .text).notNull()
                t.column("url", .text).notNull()
                t.column("term", .integer).notNull()
                t.column("expires_ms", .integer).notNull()
            }
        }
        // v6: when a group's drain was asked for; NULL when it takes new chunks.
        migrator.registerMigration("v6") { db in
            try db.alter(table: "groups") { t in t.add(column: "draining_ms", .integer) }
        }
        try migrator.migrate(queue)
    }

    /// Every known server, removed ones included.
    public func servers() async throws -> [StoredServer] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, group_id, addr, set_status, fenced_by, retired FROM servers ORDER BY id").map {
                StoredServer(
                    id: $0["id"], group: UInt32($0["group_id"] as Int64), addr: $0["addr"],
                    setStatus: ($0["set_status"] as String?).flatMap(ServerStatus.init(rawValue:)), fencedBy: $0["fenced_by"],
                    retired: $0["retired"])
            }
        }
    }

    /// Every group not removed.
    public func groups() async throws -> [UInt32] {
        try await queue.read { db in try Int64.fetchAll(db, sql: "SELECT id FROM groups WHERE removed_ms IS NULL ORDER BY id").map { UInt32($0) } }
    }

    /// Groups being drained, with when the drain was asked for.
    public func drainingGroups() async throws -> [UInt32: Int64] {
        try await queue.read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT id, draining_ms FROM groups WHERE removed_ms IS NULL AND draining_ms IS NOT NULL")
            return Dictionary(uniqueKeysWithValues: rows.map { (UInt32($0["id"] as Int64), $0["draining_ms"] as Int64) })
        }
    }

    /// Writes the durable part of `changes` in one transaction.
    public func save(_ changes: [ClusterMap.Change], fence: LeaderTerm?) async throws {
        guard changes.contains(where: \.isDurable) else { return }
        try await queue.write { db in
            if let fence { try Self.check(fence, db) }
            try Self.apply(changes, db)
        }
    }

    /// Throws `.notLeader` unless `fence` holds the lease now.
    private static func check(_ fence: LeaderTerm, _ db: Database) throws {
        let holds = try Bool.fetchOne(
            db, sql: "SELECT holder = ? AND term = ? AND expires_ms > ? FROM lease WHERE id = 1",
            arguments: [fence.holder, fence.term, currentTimeMillis()]) ?? false
        guard holds else { throw MasterStoreError.notLeader("term \(fence.term) of \(fence.holder) is over") }
    }

    /// Adds a group, or brings back a removed one.
    private static let addGroup = "INSERT INTO groups (id, created_ms) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET removed_ms = NULL"

    private static func apply(_ changes: [ClusterMap.Change], _ db: Database) throws {
        let now = currentTimeMillis()
        func saveServer(_ id: String, _ group: UInt32, _ addr: String) throws {
            // A server joining a removed group brings it back.
            try db.execute(sql: Self.addGroup, arguments: [Int64(group), now])
            try db.execute(
                sql: """
                    INSERT INTO servers (id, group_id, addr, first_seen_ms) VALUES (?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET group_id = excluded.group_id, addr = excluded.addr
                    """,
                arguments: [id, Int64(group), addr, now])
        }
        for change in changes {
            switch change {
            case .serverJoined(let id, let group, let addr), .serverAdded(let id, let group, let addr):
                try saveServer(id, group, addr)
            case .addressChanged(let id, let group, _, let to):
                try saveServer(id, group, to)
            case .groupAdded(let group):
                try db.execute(sql: Self.addGroup, arguments: [Int64(group), now])
            case .groupRemoved(let group):
                // A group made again later starts taking chunks.
                try db.execute(sql: "UPDATE groups SET removed_ms = ?, draining_ms = NULL WHERE id = ?", arguments: [now, Int64(group)])
            case .drainSet(let group, let since):
                try db.execute(sql: "UPDATE groups SET draining_ms = ? WHERE id = ?", arguments: [since, Int64(group)])
            case .statusSet(let id, _, let to, _):
                try db.execute(sql: "UPDATE servers SET set_status = ?, fenced_by = NULL WHERE id = ?", arguments: [to?.rawValue, id])
            case .fenced(let id, _, let by):
                try db.execute(sql: "UPDATE servers SET set_status = 'OFFLINE', fenced_by = ? WHERE id = ?", arguments: [by, id])
            case .serverRetired(let id, _):
                try db.execute(sql: "UPDATE servers SET retired = 1, set_status = NULL, fenced_by = NULL WHERE id = ?", arguments: [id])
            case .spareAssigned(let id, let group, _):
                try db.execute(
                    sql: "UPDATE servers SET group_id = ?, set_status = 'TRANSFERRING', fenced_by = NULL WHERE id = ?", arguments: [Int64(group), id])
            case .serverUp, .serverDown, .statusChanged, .groupState, .errorsRose:
                break
            }
        }
    }

    /// Appends to the event log.
    public func recordEvent(kind: String, serverId: String?, group: UInt32?, message: String) async throws {
        let now = currentTimeMillis()
        try await queue.write { db in
            try db.execute(
                sql: "INSERT INTO events (time_ms, kind, server_id, group_id, message) VALUES (?, ?, ?, ?, ?)",
                arguments: [now, kind, serverId, group.map { Int64($0) }, message])
        }
    }

    /// Events with id greater than `after`, oldest first.
    public func events(after: Int64, limit: Int) async throws -> [ClusterEvent] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit])
                .map(Self.event(from:))
        }
    }

    /// The `limit` most recent events, newest first.
    public func latestEvents(limit: Int) async throws -> [ClusterEvent] {
        try await queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.event(from:))
        }
    }

    private static func event(from row: Row) -> ClusterEvent {
        ClusterEvent(
            id: row["id"], timeMs: row["time_ms"], kind: row["kind"], serverId: row["server_id"],
            group: (row["group_id"] as Int64?).map { UInt32($0) }, message: row["message"])
    }

    /// Reserves `count` ids from the high-water mark (every id below it may have been handed
    /// out). SQLite runs one writer at a time, so reservations never overlap. One master owns a
    /// SQLite file, so `fence` is checked against the lease table only when a lease was claimed.
    public func reserveFileIds(count: UInt64, fence: LeaderTerm?) async throws -> Range<UInt64> {
        guard count > 0, count <= UInt64(Int64.max) else { throw MasterStoreError.invalid("cannot reserve \(count) file ids") }
        return try await queue.write { db in
            if let fence { try Self.check(fence, db) }
            try db.execute(sql: "INSERT INTO settings (key, value) VALUES ('fileid_high_water', 1) ON CONFLICT(key) DO NOTHING")
            let before = try Int64.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'fileid_high_water'") ?? 1
            let (after, overflow) = before.addingReportingOverflow(Int64(count))
            guard !overflow else { throw MasterStoreError.invalid("file ids are exhausted") }
            try db.execute(sql: "UPDATE settings SET value = ? WHERE key = 'fileid_high_water'", arguments: [after])
            return UInt64(before)..<UInt64(after)
        }
    }

    /// Claims the lease in the `lease` table on this host's clock.
    public func claimLeadership(holder: String, url: String, ttl: Duration) async throws -> Leadership {
        try await queue.write { db in
            let now = currentTimeMillis()
            let row = try Row.fetchOne(db, sql: "SELECT holder, url, term, expires_ms FROM lease WHERE id = 1")
            let current: (holder: String, url: String, term: Int64, expires: Int64) =
                row.map { ($0["holder"], $0["url"], $0["term"], $0["expires_ms"]) } ?? ("", "", 0, .min)
            guard current.holder == holder || current.expires <= now else { return .standby(leaderURL: current.url) }
            let term = current.holder == holder ? current.term : current.term + 1
            try db.execute(
                sql: """
                    INSERT INTO lease (id, holder, url, term, expires_ms) VALUES (1, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET holder = excluded.holder, url = excluded.url, term = excluded.term, expires_ms = excluded.expires_ms
                    """,
                arguments: [holder, url, term, now + ttl.milliseconds])
            return .leader(term: term)
        }
    }

    /// Ends `holder`'s lease now.
    public func resign(holder: String) async throws {
        try await queue.write { db in
            try db.execute(sql: "UPDATE lease SET expires_ms = ? WHERE id = 1 AND holder = ?", arguments: [currentTimeMillis(), holder])
        }
    }
}

import GRDB
import SpeedyCore

/// The master's durable state in SQLite: groups, servers, the file id high-water mark and the
/// event log. Everything live is cached in memory (``ClusterMap``); this is what survives a restart.
public final class MasterDatabase: Sendable {
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
        try migrator.migrate(queue)
    }

    /// A server as remembered.
    public struct StoredServer: Sendable {
        public var id: String
        public var group: UInt32
        public var addr: String
        /// The operator's setting, nil when none.
        public var setStatus: ServerStatus?
        /// The replacement it was fenced for, if any.
        public var fencedBy: String?
        /// Removed from the cluster.
        public var retired: Bool
    }

    /// Every known server, removed ones included.
    public func servers() throws -> [StoredServer] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, group_id, addr, set_status, fenced_by, retired FROM servers ORDER BY id").map {
                StoredServer(
                    id: $0["id"], group: UInt32($0["group_id"] as Int64), addr: $0["addr"],
                    setStatus: ($0["set_status"] as String?).flatMap(ServerStatus.init(rawValue:)), fencedBy: $0["fenced_by"],
                    retired: $0["retired"])
            }
        }
    }

    /// Every known group id.
    public func groups() throws -> [UInt32] {
        try queue.read { db in try Int64.fetchAll(db, sql: "SELECT id FROM groups WHERE removed_ms IS NULL ORDER BY id").map { UInt32($0) } }
    }

    /// Writes the durable part of `changes` (servers, groups, settings) in one transaction before
    /// returning. The master calls it holding its map's lock, so the database sees changes in
    /// the order the map made them.
    public func saveNow(_ changes: [ClusterMap.Change]) throws {
        try queue.write { db in try Self.apply(changes, db) }
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
                try db.execute(sql: "UPDATE groups SET removed_ms = ? WHERE id = ?", arguments: [now, Int64(group)])
            case .statusSet(let id, _, let to, _):
                try db.execute(sql: "UPDATE servers SET set_status = ?, fenced_by = NULL WHERE id = ?", arguments: [to?.rawValue, id])
            case .fenced(let id, _, let by):
                try db.execute(sql: "UPDATE servers SET set_status = 'OFFLINE', fenced_by = ? WHERE id = ?", arguments: [by, id])
            case .serverRetired(let id, _):
                try db.execute(sql: "UPDATE servers SET retired = 1, set_status = NULL, fenced_by = NULL WHERE id = ?", arguments: [id])
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
    public func events(after: Int64, limit: Int) throws -> [ClusterEvent] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit])
                .map(Self.event(from:))
        }
    }

    /// The `limit` most recent events, newest first.
    public func latestEvents(limit: Int) throws -> [ClusterEvent] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events ORDER BY id DESC LIMIT ?", arguments: [limit]).map(Self.event(from:))
        }
    }

    private static func event(from row: Row) -> ClusterEvent {
        ClusterEvent(
            id: row["id"], timeMs: row["time_ms"], kind: row["kind"], serverId: row["server_id"],
            group: (row["group_id"] as Int64?).map { UInt32($0) }, message: row["message"])
    }

    /// The file id high-water mark: every id below it may have been handed out.
    public func fileIdHighWater() throws -> UInt64 {
        try queue.read { db in
            try Int64.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'fileid_high_water'").map { UInt64($0) } ?? 1
        }
    }

    /// Durably raises the high-water mark (never lowers it); returns only after the commit.
    public func setFileIdHighWater(_ value: UInt64) async throws {
        try await queue.write { db in
            try db.execute(
                sql: "INSERT INTO settings (key, value) VALUES ('fileid_high_water', ?) ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
                arguments: [Int64(value)])
        }
    }
}

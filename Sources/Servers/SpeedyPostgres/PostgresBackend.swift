import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// A PostgreSQL database shared by roles (`--database postgresql://…`): a connection pool, the
/// serializable transactions every write runs in, and forward-only schema migrations.
///
/// Every write transaction is `SERIALIZABLE` and is retried when PostgreSQL reports a
/// serialization failure or a deadlock, so a transaction behaves as if it ran alone, as under
/// SQLite's single writer: a check-then-insert (an upload cap, a compare-and-swap) cannot be raced
/// by another metaserver on the same database.
public final class PostgresBackend: Sendable {
    /// The pool. Use ``transaction(_:)`` and ``read(_:)`` rather than leasing connections directly.
    public let client: PostgresClient
    /// Where the database is, without the password (safe to log).
    public let location: String
    private let runner: Task<Void, Never>
    private let logger: Logger
    /// How long an operation waits for a connection (the URL's `connect_timeout`).
    private let connectionWait: Duration

    /// Opens a pool to `url` (see ``PostgresURL``). Connections are made on first use.
    public init(url: PostgresURL, logger: Logger) {
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: url.password, database: url.database, tls: url.tls)
        // An unreachable database fails requests in seconds (a clear 503), not after the default 10.
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.maximumConnections = url.maximumConnections
        // No statement, and no transaction left open by a stuck client, holds the database forever.
        configuration.options.additionalStartupParameters = [
            ("statement_timeout", "60s"), ("idle_in_transaction_session_timeout", "60s"), ("application_name", "speedy"),
        ]
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.location = url.redacted
        self.logger = logger
        self.connectionWait = url.connectionWait
        runner = Task { await client.run() }
    }

    deinit { runner.cancel() }

    /// Opens a pool to `url` and brings `component`'s schema up to date (``migrate(component:steps:)``),
    /// closing the pool again when that fails.
    /// - Throws: ``OpenFailed``, saying why, without the password.
    public static func open(_ url: PostgresURL, component: String, steps: [String], logger: Logger) async throws(OpenFailed) -> PostgresBackend {
        let backend = PostgresBackend(url: url, logger: logger)
        do {
            try await backend.migrate(component: component, steps: steps)
        } catch {
            await backend.close()
            throw OpenFailed(description: "cannot open \(url.redacted): \(describe(error))")
        }
        return backend
    }

    /// A database that could not be opened for a role, and why.
    public struct OpenFailed: Error, CustomStringConvertible {
        public var description: String
    }

    /// Closes every connection.
    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    /// How long a transaction that keeps losing serialization conflicts is run again.
    public static let conflictBudget: Duration = .seconds(10)
    /// How long an operation waits for a connection before failing, unless the URL says
    /// otherwise: the pool keeps trying to connect in the background, but a request should not
    /// hang on a database that is gone.
    public static let defaultConnectionWait: Duration = .seconds(4)

    /// Runs `body`'s queries in a `SERIALIZABLE` transaction and commits it; rolls back when `body`
    /// throws (its error is rethrown as is). When PostgreSQL aborts it for a conflict with a
    /// concurrent transaction, runs it again after a growing, jittered pause, for up to
    /// `budget` (``conflictBudget`` unless the transaction is long). With `rollback`, the transaction is always rolled back (a dry run).
    public func transaction<T: Sendable>(
        rollback: Bool = false, budget: Duration = PostgresBackend.conflictBudget, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + budget
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try await withConnection { connection in
                    try await Self.once(connection, rollback: rollback, logger: self.logger, body)
                }
            } catch let error as PSQLError where Self.isConflict(error) && ContinuousClock.now < deadline {
                // 1 ms doubling to 64 ms, jittered so the racers do not meet again.
                let pause = Double(1 << min(attempt, 6)) * Double.random(in: 0.5...1.5)
                try await Task.sleep(for: .milliseconds(pause))
            }
        }
    }

    /// Leases a connection for `body`, failing with ``Unreachable`` when none comes within
    /// the URL's connection wait (``defaultConnectionWait`` unless it says `connect_timeout`).
    func withConnection<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let race = LeaseRace()
        let unreachable = Unreachable(location: location, timeout: connectionWait)
        // The work runs in a child task beside its timer; both end before this returns. Exactly
        // one of them wins: a body never runs once its caller was told the database is gone.
        return try await withoutActuallyEscaping(body) { body in
            try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await self.client.withConnection { connection in
                        guard race.leased() else { throw unreachable }
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try await Task.sleep(for: self.connectionWait)
                    if race.timedOut() { throw unreachable }
                    return nil
                }
                while let outcome = try await group.next() {
                    if let value = outcome {
                        group.cancelAll()
                        return value
                    }
                }
                throw CancellationError()
            }
        }
    }

    /// Which came first for one operation: its connection or its timeout.
    private final class LeaseRace: Sendable {
        private let state = Atomic<Int>(0)  // 0 waiting, 1 leased, 2 timed out
        /// True when the connection came first (the body may run).
        func leased() -> Bool { state.compareExchange(expected: 0, desired: 1, ordering: .acquiringAndReleasing).exchanged }
        /// True when the timeout came first (the body will not run).
        func timedOut() -> Bool { state.compareExchange(expected: 0, desired: 2, ordering: .acquiringAndReleasing).exchanged }
    }

    /// No connection to the database came in time.
    public struct Unreachable: Error, CustomStringConvertible {
        public var location: String
        public var timeout: Duration
        public var description: String {
            "no connection to PostgreSQL at \(location) within \(timeout) (it is down or unreachable, or every connection of the pool is busy)"
        }
    }

    private static func once<T: Sendable>(
        _ connection: PostgresConnection, rollback: Bool, logger: Logger, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await connection.query("BEGIN ISOLATION LEVEL SERIALIZABLE", logger: logger)
        let value: T
        do {
            value = try await body(connection)
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
        try await connection.query(rollback ? "ROLLBACK" : "COMMIT", logger: logger)
        return value
    }

    /// Runs `body`'s queries on one connection in a read-only transaction that sees one snapshot.
    public func read<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in
            try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: self.logger)
            do {
                let value = try await body(connection)
                try await connection.query("COMMIT", logger: self.logger)
                return value
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: self.logger)
                throw error
            }
        }
    }

    /// Runs `body`'s single statement outside a transaction (one round trip).
    public func statement<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await withConnection { connection in try await body(connection) }
    }

    /// Whether PostgreSQL aborted a transaction for a concurrent one (serialization failure or
    /// deadlock): running it again is safe.
    public static func isConflict(_ error: PSQLError) -> Bool {
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state == "40001" || state == "40P01"
    }

    /// Whether PostgreSQL refused the values a statement carried (SQLSTATE class 22, "data
    /// exception": bytes that are not UTF-8, a NUL in a text, a number out of range): the
    /// request's fault, not the database's.
    public static func isDataException(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError, error.code == .server, let state = error.serverInfo?[.sqlState] else { return false }
        return state.hasPrefix("22")
    }

    /// One line saying why a database call failed, for errors and logs. It never holds the
    /// password (PostgreSQL's messages do not carry it) nor the query's parameters.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? PSQLError else { return "\(error)" }
        if let message = error.serverInfo?[.message] {
            let state = error.serverInfo?[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return "PostgreSQL: \(message)\(state)"
        }
        if let underlying = error.underlying { return "PostgreSQL \(error.code): \(underlying)" }
        return "PostgreSQL \(error.code)"
    }

    // MARK: Decoding

    /// Runs `query` and collects its rows decoded as `type`.
    public static func rows<each Column: PostgresDecodable & Sendable>(
        _ connection: PostgresConnection, _ query: PostgresQuery, as type: (repeat each Column).Type, logger: Logger
    ) async throws -> [(repeat each Column)] {
        var rows: [(repeat each Column)] = []
        for try await row in try await connection.query(query, logger: logger).decode(type) { rows.append(row) }
        return rows
    }

    /// Runs `query` and collects its one column decoded as `type`.
    public static func column<Value: PostgresDecodable & Sendable>(
        _ connection: PostgresConnection, _ query: PostgresQuery, as type: Value.Type, logger: Logger
    ) async throws -> [Value] {
        var values: [Value] = []
        for try await value in try await connection.query(query, logger: logger).decode(type) { values.append(value) }
        return values
    }

    /// Runs `query` and counts the rows it returned (`… RETURNING 1` counts what it changed).
    public static func count(_ connection: PostgresConnection, _ query: PostgresQuery, logger: Logger) async throws -> Int {
        var count = 0
        for try await _ in try await connection.query(query, logger: logger) { count += 1 }
        return count
    }

    // MARK: Schema

    /// Brings `component`'s tables to the newest version: `steps[i]` is the SQL that takes the
    /// schema from version `i` to `i + 1` (statements separated by semicolons). The versions applied are recorded in `speedy_schema`.
    /// Every step runs in one transaction under an advisory lock, so roles starting together on
    /// one database migrate it once, and a failed step leaves the schema as it was.
    ///
    /// - Throws: ``SchemaError/newer`` when the database is at a version this build does not know
    ///   (a newer release migrated it): refuse to run rather than misread it.
    public func migrate(component: String, steps: [String]) async throws {
        try await withConnection { connection in
            let logger = self.logger
            try await connection.query("BEGIN", logger: logger)
            do {
                try await connection.query("SELECT pg_advisory_xact_lock(727011)", logger: logger)
                try await connection.query(
                    "CREATE TABLE IF NOT EXISTS speedy_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL, migrated_ms BIGINT NOT NULL)",
                    logger: logger)
                var version = 0
                for try await stored in try await connection.query(
                    "SELECT version FROM speedy_schema WHERE component = \(component)", logger: logger
                ).decode(Int.self) {
                    version = stored
                }
                guard version <= steps.count else { throw SchemaError.newer(component: component, found: version, known: steps.count) }
                // One statement at a time: the extended protocol takes no lists (and steps hold no
                // semicolons but between statements).
                for step in steps.dropFirst(version) {
                    for statement in step.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                        try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                }
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                try await connection.query(
                    """
                    INSERT INTO speedy_schema (component, version, migrated_ms) VALUES (\(component), \(steps.count), \(now))
                    ON CONFLICT (component) DO UPDATE SET version = excluded.version, migrated_ms = excluded.migrated_ms
                    """, logger: logger)
                try await connection.query("COMMIT", logger: logger)
                if version < steps.count {
                    logger.info("migrated the \(component) schema in \(self.location) from version \(version) to \(steps.count)")
                }
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// Why a schema cannot be used.
    public enum SchemaError: Error, CustomStringConvertible {
        case newer(component: String, found: Int, known: Int)

        public var description: String {
            switch self {
            case .newer(let component, let found, let known):
                "the \(component) schema is at version \(found), newer than this build knows (\(known)): run a newer speedy"
            }
        }
    }
}

/// A `postgresql://` (or `postgres://`) connection URL, parsed and checked:
/// `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require&pool=N&connect_timeout=S]`.
///
/// Without a password in the URL, `PGPASSWORD` is used, so the password need not appear on a
/// command line. `sslmode` is `prefer` by default, as libpq's (TLS when offered, the certificate
/// unchecked); `require` insists on TLS and, unlike libpq's, verifies the server's
/// certificate against the system's trust roots.
public struct PostgresURL: Sendable, Equatable {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var sslMode: String
    public var maximumConnections: Int
    /// How long a call waits for a connection before it fails (`connect_timeout`, in seconds, as
    /// libpq names it).
    public var connectionWait: Duration

    /// Why a URL was refused; the message never repeats the password.
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(Invalid) {
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            scheme == "postgresql" || scheme == "postgres"
        else {
            throw Invalid(description: "the database must be a URL postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = components.host, !host.isEmpty else { throw Invalid(description: "the database URL names no host") }
        guard let user = components.user, !user.isEmpty else { throw Invalid(description: "the database URL names no user") }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else { throw Invalid(description: "the database URL names no database (…/DATABASE)") }
        if let port = components.port, !(1...65535).contains(port) { throw Invalid(description: "the database port must be 1 to 65535") }
        self.user = user
        self.password = components.password ?? environment["PGPASSWORD"]
        self.host = host
        self.port = components.port ?? 5432
        self.database = database
        sslMode = "prefer"
        maximumConnections = 20
        connectionWait = PostgresBackend.defaultConnectionWait
        for item in components.queryItems ?? [] {
            switch (item.name, item.value ?? "") {
            case ("sslmode", let mode) where ["disable", "prefer", "require"].contains(mode): sslMode = mode
            case ("sslmode", _): throw Invalid(description: "sslmode must be disable, prefer or require")
            case ("pool", let value):
                guard let count = Int(value), (1...500).contains(count) else { throw Invalid(description: "pool must be 1 to 500 connections") }
                maximumConnections = count
            case ("connect_timeout", let value):
                guard let seconds = Int(value), (1...600).contains(seconds) else {
                    throw Invalid(description: "connect_timeout must be 1 to 600 seconds")
                }
                connectionWait = .seconds(seconds)
            case (let name, _):
                throw Invalid(description: "unknown database URL parameter \(name) (sslmode, pool and connect_timeout are known)")
            }
        }
    }

    /// The URL without its password, to log and show.
    public var redacted: String { "postgresql://\(user)@\(host):\(port)/\(database)" }

    var tls: PostgresClient.Configuration.TLS {
        switch sslMode {
        case "disable": .disable
        case "require": .require(.makeClientConfiguration())
        default:
            // As libpq's prefer: encrypted when the server offers it, its certificate unchecked
            // (Debian's default server has a self-signed one). `require` checks it.
            .prefer({
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.certificateVerification = .none
                return tls
            }())
        }
    }
}

import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL instance for one test process: Debian's binaries, a data directory of its
/// own under the temporary directory, a free port on 127.0.0.1, run as the unprivileged `postgres`
/// user when the tests run as root (PostgreSQL refuses root), and stopped at exit.
///
/// Tests ask for ``freshDatabase()``: an empty database of their own on the shared instance, or a
/// skip with the reason where PostgreSQL cannot start.
public final class PostgresTestServer: Sendable {
    public let directory: String
    public let port: Int
    public let user = "speedy"
    public let password = "speedy-test-" + UUID().uuidString.prefix(8)
    private let runAs: String?

    /// Where Debian puts the server binaries (the newest version installed).
    static var binDirectory: String? {
        let root = "/usr/lib/postgresql"
        guard let versions = try? FileManager.default.contentsOfDirectory(atPath: root) else { return nil }
        return versions.compactMap(Int.init).max().map { "\(root)/\($0)/bin" }
    }

    private init(directory: String, port: Int, runAs: String?) {
        self.directory = directory
        self.port = port
        self.runAs = runAs
    }

    /// The instance, or why there is none.
    private static let started: Result<PostgresTestServer, SpawnedProgram.Failure> = {
        let result = start()
        if case .success = result { atexit { if case .success(let server) = PostgresTestServer.started { server.stop() } } }
        return result
    }()

    /// The shared instance, started on first use; nil where PostgreSQL cannot start.
    public static var shared: PostgresTestServer? { try? started.get() }

    /// ``shared``, waited for on a thread of its own: the first use runs initdb, and a test
    /// thread waiting for that would hold one of the few threads every suite shares.
    public static func sharedServer() async -> PostgresTestServer? {
        await detached { try? started.get() }
    }

    /// The URL of a new, empty database on the shared instance. Where PostgreSQL cannot start, the
    /// calling test is skipped with the reason (the other tests run). initdb, pg_ctl and createdb
    /// run on a thread of their own, not on one of the few the tests' concurrent work shares.
    public static func freshDatabase() async throws -> String {
        let outcome = await detached { () -> Result<String, SpawnedProgram.Failure> in
            switch started {
            case .success(let server):
                do {
                    return .success(try server.createDatabaseBlocking())
                } catch {
                    return .failure(error as? SpawnedProgram.Failure ?? SpawnedProgram.Failure("\(error)"))
                }
            case .failure(let reason): return .failure(reason)
            }
        }
        switch outcome {
        // The shared instance serves every suite at once, on a machine whose two cores the other
        // suites keep busy: a call waits longer for its connection than a role's 4 s would.
        case .success(let url): return url + "&connect_timeout=60"
        case .failure(let reason) where shared == nil: try skip(reason)
        case .failure(let reason): throw reason
        }
    }

    /// Reports the skip on standard error (Swift Testing does not print a cancelled case's
    /// comment) and cancels the calling test.
    private static func skip(_ reason: SpawnedProgram.Failure) throws -> Never {
        FileHandle.standardError.write(Data("⚠︎ \(Test.current?.name ?? "a test"): skipped, PostgreSQL is not available: \(reason)\n".utf8))
        try Test.cancel("PostgreSQL is not available, skipped: \(reason)")
    }

    /// Runs blocking work on a new thread.
    private static func detached<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in Thread.detachNewThread { continuation.resume(returning: work()) } }
    }

    /// Creates an empty database and returns its URL (`postgresql://…?sslmode=disable`).
    public func createDatabase() async throws -> String {
        try await Self.detached { Result { try self.createDatabaseBlocking() } }.get()
    }

    private func createDatabaseBlocking() throws -> String {
        let name = "t" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try run(try Self.binary("createdb"), ["-h", "127.0.0.1", "-p", String(port), "-U", user, name], environment: ["PGPASSWORD": password])
        return "postgresql://\(user):\(password)@127.0.0.1:\(port)/\(name)?sslmode=disable"
    }

    private static func binary(_ name: String) throws(SpawnedProgram.Failure) -> String {
        guard let bin = binDirectory, FileManager.default.isExecutableFile(atPath: bin + "/" + name) else {
            throw SpawnedProgram.Failure("PostgreSQL's server binaries are not installed (apt install postgresql)")
        }
        return bin + "/" + name
    }

    private static func start() -> Result<PostgresTestServer, SpawnedProgram.Failure> {
        if ProcessInfo.processInfo.environment["SPEEDY_TEST_NO_POSTGRES"] == "1" {
            return .failure(SpawnedProgram.Failure("SPEEDY_TEST_NO_POSTGRES=1"))
        }
        let directory = NSTemporaryDirectory() + "speedy-pg-" + UUID().uuidString
        let runAs = geteuid() == 0 ? "postgres" : nil
        let server = PostgresTestServer(directory: directory, port: TestPorts.free(), runAs: runAs)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let passwordFile = directory + "/password"
            try server.password.write(toFile: passwordFile, atomically: true, encoding: .utf8)
            if runAs != nil { try server.run("/bin/chown", ["-R", "postgres:postgres", directory], asSelf: true) }
            try server.run(
                try binary("initdb"), ["-D", directory + "/data", "-U", server.user, "--pwfile", passwordFile, "--auth", "scram-sha-256", "-E", "UTF8"])
            try server.startServerBlocking()
            return .success(server)
        } catch {
            server.stop()
            return .failure(error as? SpawnedProgram.Failure ?? SpawnedProgram.Failure("cannot start a private PostgreSQL: \(error)"))
        }
    }

    /// An instance of the calling test's own (to stop and start under a running cluster); stop
    /// it at the end. Skips the test with the reason where PostgreSQL cannot start.
    public static func startPrivate() async throws -> PostgresTestServer {
        switch await detached({ start() }) {
        case .success(let server): return server
        case .failure(let reason): try skip(reason)
        }
    }

    /// Starts the server (again), waiting until it takes connections.
    public func startServer() async throws {
        try await Self.detached { Result { try self.startServerBlocking() } }.get()
    }

    private func startServerBlocking() throws {
        try run(
            try Self.binary("pg_ctl"),
            [
                "-D", directory + "/data", "-l", directory + "/log", "-w", "-t", "30",
                "-o", "-p \(port) -k \(directory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", "start",
            ])
    }

    /// Stops the server at once (as a crash would), keeping its data.
    public func stopServer() async throws {
        try await Self.detached { Result { try self.run(try Self.binary("pg_ctl"), ["-D", self.directory + "/data", "-m", "immediate", "-w", "stop"]) } }.get()
    }

    /// Stops the instance at once and removes its directory.
    public func stop() {
        if let pgctl = try? Self.binary("pg_ctl"), FileManager.default.fileExists(atPath: directory + "/data/postmaster.pid") {
            try? run(pgctl, ["-D", directory + "/data", "-m", "immediate", "-w", "stop"])
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs a program to completion (as `postgres` when the tests run as root); throws with its
    /// output when it fails.
    private func run(_ program: String, _ arguments: [String], environment: [String: String] = [:], asSelf: Bool = false) throws {
        var env = ["PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"]
        env.merge(environment) { $1 }
        let result =
            if let runAs, !asSelf {
                try SpawnedProgram.runBlocking("/usr/sbin/runuser", ["-u", runAs, "--", "/usr/bin/env"] + env.map { "\($0.key)=\($0.value)" } + [program] + arguments, environment: env)
            } else {
                try SpawnedProgram.runBlocking(program, arguments, environment: env)
            }
        guard result.status == 0 else {
            throw SpawnedProgram.Failure("\((program as NSString).lastPathComponent) exited \(result.status): \(result.output.suffix(500))")
        }
    }
}

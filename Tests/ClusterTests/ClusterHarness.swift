import Foundation
import NIOCore
import NIOHTTP1
import ServerSupport
import SpeedyClients
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `speedy` and `chunktool` executables on loopback for end-to-end tests.
///
/// Binaries come from `SPEEDY_BIN_DIR`, else the directory of the running test bundle
/// (`swift test` builds them next to it).
final class ClusterHarness: @unchecked Sendable {
    let root: String
    /// Whether the roles it starts hold credentials of their own (``credentials``), each held to
    /// its role's routes, rather than all the one cluster secret.
    let roles: Bool
    private var processes: [Process] = []
    private let lock = NSLock()

    /// A harness for one test's cluster; with `roles` (the default) every role it starts gets
    /// its own secret and the role table, as `speedy up` gives them, so every test's cluster
    /// runs under the route authorization tables. Tests that rotate the one cluster secret pass false.
    init(roles: Bool = true) {
        // A test cannot run without a place to put its cluster.
        // swiftlint:disable:next force_try
        root = try! TemporaryDirectory("cluster").path
        self.roles = roles
        _ = Self.secretFile
        if roles { _ = Self.credentials }
    }

    /// Each role's secret and the role table, for the clusters that run with roles; the
    /// operator's secret is ``secretFile``, which the tools and the test's own clients send.
    static let credentials: RoleCredentialFiles = {
        var files = RoleCredentialFiles(directory: NSTemporaryDirectory() + "speedy-test-roles-" + UUID().uuidString, operatorSecret: secretFile)
        // The tests' own clients send the operator's secret as it is, to whichever port they call.
        files.operatorSecretEverywhere = true
        try! files.make()
        return files
    }()

    /// What a role started with `arguments` and `environment` is given to run with its own
    /// credential; nothing for a tool, `up` (which makes its own), or a role given a secret by the test.
    func roleEnvironment(_ arguments: [String], _ environment: [String: String]) -> [String: String] {
        guard roles, let first = arguments.first, let role = ClusterRole(rawValue: first), role != .operator, role != .monitor,
            environment["SPEEDY_CLUSTER_SECRET_FILE"] == nil, !arguments.contains("--cluster-secret-file"), !arguments.contains("--insecure")
        else { return [:] }
        return ["SPEEDY_CLUSTER_SECRET_FILE": Self.credentials.secretPath(role), "SPEEDY_ROLE_TABLE": Self.credentials.tablePath]
    }

    /// The cluster secret of every cluster this test process starts: every role and tool gets it
    /// through `SPEEDY_CLUSTER_SECRET_FILE`, and the test's own clients send it.
    static let secretFile: String = {
        let path = NSTemporaryDirectory() + "speedy-test-secret-" + UUID().uuidString
        let secret = ClusterSecret.generate()
        try! SecretFile.write(secret.value + "\n", to: path)
        return path
    }()

    /// How the test's own clients call the clusters it starts: with their secret, which follows
    /// the file when a test rotates it (``ClusterSecretRing/reload()``).
    static let transport = ClusterTransport(secrets: try! ClusterSecretRing(path: secretFile))

    /// The environment every process of a test cluster starts with.
    static var clusterEnvironment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["SPEEDY_CLUSTER_SECRET_FILE"] = secretFile
        return environment
    }

    /// Sends SIGHUP to every process this harness started that still runs (by its own PID): what
    /// an operator does after changing a secret or certificate file.
    func hangUp() {
        for process in lock.withLock({ processes }) where process.isRunning { kill(process.processIdentifier, SIGHUP) }
    }

    /// Stops every process this harness started (by its own PID) and removes the data.
    ///
    /// It signals at once and waits on a thread of its own: it runs in `defer`, on one of the
    /// few threads every test shares (``SpawnedProgram``), and `speedy up` may take seconds.
    func shutdown() {
        let running = lock.withLock({ processes }).filter(\.isRunning)
        let root = root
        let removeData: @Sendable () -> Void = {
            // SPEEDY_KEEP_TEST_DATA=1 keeps the data and logs for a look after a failure.
            if ProcessInfo.processInfo.environment["SPEEDY_KEEP_TEST_DATA"] == nil {
                try? FileManager.default.removeItem(atPath: root)
            }
        }
        guard !running.isEmpty else { return removeData() }
        let left = Counter(running.count)
        for process in running {
            // `speedy up` stops its children on SIGTERM; a SIGKILL would leave them running
            // (a test that failed half-way has not stopped it itself). So do dockerd and
            // containerd, which a test may be stopping already.
            let isRole = process.executableURL?.path.hasPrefix(Self.binDirectory) == true && process.arguments?.first != "up"
            process.stop(signal: isRole ? SIGKILL : SIGTERM) {
                if left.decrement() == 0 { removeData() }
            }
        }
    }

    /// Counts down from a number, from any thread.
    private final class Counter: @unchecked Sendable {
        private var value: Int
        private let lock = NSLock()
        init(_ value: Int) { self.value = value }
        func decrement() -> Int { lock.withLock { value -= 1; return value } }
    }

    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["SPEEDY_BIN_DIR"] { return dir }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/speedy") } ?? candidates[1]
    }()

    /// A TCP port that was free a moment ago.
    static func freePort() -> Int { TestPorts.free() }

    /// Starts `speedy ARGS`, its output going to ROOT/NAME.log; on a host of a ``NetworkLab``
    /// when one is given (the process's PID is still the role's own).
    @discardableResult
    func start(
        _ name: String, _ arguments: [String], on host: NetworkLab.Host? = nil, environment: [String: String] = [:], program: String? = nil
    ) throws -> Process {
        let process = Process()
        if let program {
            process.executableURL = URL(fileURLWithPath: program)
            process.arguments = arguments
        } else if let host {
            process.executableURL = URL(fileURLWithPath: NetworkLab.ip)
            process.arguments = ["netns", "exec", host.namespace, Self.binDirectory + "/speedy"] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: Self.binDirectory + "/speedy")
            process.arguments = arguments
        }
        let own = program == nil ? roleEnvironment(arguments, environment) : [:]
        process.environment = Self.clusterEnvironment.merging(own) { $1 }.merging(environment) { $1 }
        let logPath = root + "/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        lock.withLock { processes.append(process) }
        return process
    }

    /// Starts a chunkmaster on a free port; returns its URL. Automatic repair is off unless
    /// asked for: most tests damage chunks to see the tools find them. Members of a group may
    /// share a zone unless asked otherwise: every chunkserver of a test is on this host.
    func startMaster(downAfter: Double = 1.5, autoRepair: Bool = false, allowSameZone: Bool = true, arguments: [String] = []) throws -> (url: String, process: Process) {
        let port = Self.freePort()
        let process = try start(
            "master",
            ["chunkmaster", "--listen", "127.0.0.1:\(port)", "--data", root + "/master", "--down-after", String(downAfter)]
                + (autoRepair ? [] : ["--no-auto-repair"]) + (allowSameZone ? ["--allow-same-zone"] : []) + arguments)
        return ("http://127.0.0.1:\(port)", process)
    }

    /// Starts a chunkserver of `group` on a free port; returns its address and process.
    func startChunkserver(
        master: String, group: UInt32, name: String, port: Int? = nil, arguments: [String] = []
    ) throws -> (addr: String, process: Process) {
        let port = port ?? Self.freePort()
        let process = try start(
            name,
            [
                "chunkserver", "--master", master, "--group", String(group), "--listen", "127.0.0.1:\(port)",
                "--data", root + "/\(name)", "--id", name, "--volume-size", "64M", "--reserve", "0",
                "--heartbeat-interval", "0.25",
            ] + arguments)
        return ("127.0.0.1:\(port)", process)
    }

    /// `speedy up --auth --tls` (one group of three) on a free run of six ports, its data in the
    /// cluster's `up` directory (the CA in `tls/`, the admin's password in `admin-password`).
    /// Stop it with SIGTERM, so it stops its children (a SIGKILL would leave them running).
    func startSecureUp() throws -> (data: String, registryPort: Int, process: Process) {
        let base = TestPorts.freeRun(count: 6)
        let data = root + "/up"
        let process = try start(
            "up",
            [
                "up", "--data", data, "--groups", "1", "--replicas", "3", "--master-port", String(base), "--chunkserver-port", String(base + 1),
                "--meta-port", String(base + 4), "--registry-port", String(base + 5), "--volume-size", "64M", "--reserve", "0", "--auth", "--tls",
            ])
        return (data, base + 5, process)
    }

    /// A whole registry cluster: master, groups of three chunkservers, metaserver, imageserver.
    struct Registry {
        var masterURL: String
        var metaURL: String
        var registryURL: String
        var hostPort: String
        /// Group 1's are cs1, cs2, cs3; group G's (G > 1) are gG-cs1, gG-cs2, gG-cs3.
        var chunkservers: [(name: String, addr: String, process: Process)]
    }

    /// - Parameter imageserverArguments: extra flags for the imageserver (limits, timeouts).
    /// - Parameter chunkserverArguments: extra flags for every chunkserver.
    /// - Parameter imageserverEnvironment: extra environment of the imageserver (`SPEEDY_LOG_FORMAT`).
    /// - Parameter masterDownAfter: the master's down timeout.
    /// - Parameter masterArguments: extra flags for the master; when given, automatic repair is on.
    /// - Parameter metaserverArguments: extra flags for the metaserver (retention, scheduled collection).
    func startRegistry(
        groups: Int = 1, imageserverArguments: [String] = [], chunkserverArguments: [String] = [],
        imageserverEnvironment: [String: String] = [:], masterDownAfter: Double = 1.5, masterArguments: [String]? = nil,
        metaserverArguments: [String] = []
    ) async throws -> Registry {
        // Given master arguments replace the default `--no-auto-repair`.
        let (masterURL, _) = try startMaster(downAfter: masterDownAfter, autoRepair: masterArguments != nil, arguments: masterArguments ?? [])
        var servers: [(String, String, Process)] = []
        for group in 1...groups {
            for i in 1...3 {
                let name = group == 1 ? "cs\(i)" : "g\(group)-cs\(i)"
                let (addr, process) = try startChunkserver(master: masterURL, group: UInt32(group), name: name, arguments: chunkserverArguments)
                servers.append((name, addr, process))
            }
        }
        let metaPort = Self.freePort()
        try start("meta", ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--data", root + "/meta", "--master", masterURL] + metaserverArguments)
        let registryPort = Self.freePort()
        try start(
            "imageserver",
            ["imageserver", "--listen", "127.0.0.1:\(registryPort)", "--master", masterURL, "--meta", "http://127.0.0.1:\(metaPort)"]
                + imageserverArguments, environment: imageserverEnvironment)
        let master = MasterClient(baseURL: masterURL, transport: ClusterHarness.transport)
        let registryURL = "http://127.0.0.1:\(registryPort)"
        var joinedAt: ContinuousClock.Instant?
        let ready = await eventually(within: 30) {
            // Every chunkserver joined: a group is healthy as soon as the members there are writable,
            // so a group of two would pass while its third member is still starting.
            guard let snapshot = try? await master.snapshot(), snapshot.groups.count == groups,
                snapshot.groups.allSatisfy({ $0.state == .healthy && $0.members.filter { $0.status == .readWrite }.count == 3 })
            else { return false }
            joinedAt = joinedAt ?? .now
            // 401 is a registry up with logins on.
            guard let reply = try? await ServiceClient(baseURL: registryURL, transport: .plain).send(.GET, "/v2/") else { return false }
            return reply.status == 200 || reply.status == 401
        }
        guard ready else {
            throw HarnessError("registry cluster did not come up:\n\(log("master"))\n\(log("imageserver"))")
        }
        // The imageserver may still hold a map from before the last member joined; it fetches a
        // new one every second, and chunks placed by the old one would miss that member.
        if let joinedAt { try await Task.sleep(until: joinedAt + .milliseconds(1200)) }
        return Registry(masterURL: masterURL, metaURL: "http://127.0.0.1:\(metaPort)", registryURL: registryURL, hostPort: "127.0.0.1:\(registryPort)", chunkservers: servers)
    }

    /// Runs a program to completion in the cluster's environment, on a thread of its own
    /// (``SpawnedProgram``): exit status and its output.
    @discardableResult
    static func run(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], errors: SpawnedProgram.ErrorOutput = .merged
    ) async throws -> (status: Int32, output: String) {
        var merged = clusterEnvironment
        merged.merge(environment) { $1 }
        return try await SpawnedProgram.run(executable, arguments, environment: merged, errors: errors)
    }

    /// Makes an OCI image layout with umoci: one layer holding `bytes` random bytes and a text file.
    func makeImage(named name: String, randomBytes bytes: Int) async throws -> String {
        let layout = root + "/\(name)-layout"
        let bundle = root + "/\(name)-bundle"
        for args in [["init", "--layout", layout], ["new", "--image", layout + ":latest"],
                     ["unpack", "--rootless", "--image", layout + ":latest", bundle]] {
            let result = try await Self.run("/usr/bin/umoci", args)
            guard result.status == 0 else { throw HarnessError("umoci \(args[0]) failed: \(result.output)") }
        }
        let data = Data(TestBytes.random(bytes, seed: Int.random(in: .min ... .max)))
        try data.write(to: URL(fileURLWithPath: bundle + "/rootfs/payload.bin"))
        try Data("hello from \(name)\n".utf8).write(to: URL(fileURLWithPath: bundle + "/rootfs/hello.txt"))
        let repack = try await Self.run("/usr/bin/umoci", ["repack", "--image", layout + ":latest", bundle])
        guard repack.status == 0 else { throw HarnessError("umoci repack failed: \(repack.output)") }
        return layout
    }

    /// Runs `chunktool ARGS` to completion: exit status and standard output.
    func chunktool(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
        try await Self.run(Self.binDirectory + "/chunktool", arguments, environment: environment, errors: .discarded)
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass.
    func eventually(within seconds: Double, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return await condition()
    }

    /// The process listening on TCP `port` on loopback (from /proc: the socket's inode in
    /// /proc/net/tcp, then the process holding a descriptor to it), for killing a child of
    /// `speedy up`, whose PIDs the test does not know.
    static func pid(listeningOn port: Int) -> pid_t? {
        // /proc files say they are empty: read to the end rather than by the size they report.
        guard let data = FileHandle(forReadingAtPath: "/proc/net/tcp")?.readDataToEndOfFile() else { return nil }
        let table = String(decoding: data, as: UTF8.self)
        let local = String(format: "0100007F:%04X", port)
        // Columns: sl local_address rem_address st ... inode; state 0A is LISTEN.
        var found: String?
        for line in table.split(separator: "\n").dropFirst() {
            let columns = line.split(separator: " ").map(String.init)
            if columns.count > 9, columns[1] == local, columns[3] == "0A" {
                found = columns[9]
                break
            }
        }
        guard let inode = found else { return nil }
        let target = "socket:[\(inode)]"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(entry)/fd") else { continue }
            for fd in fds where (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/fd/\(fd)")) == target {
                return pid
            }
        }
        return nil
    }

    /// The log a process wrote, for failure messages.
    func log(_ name: String) -> String {
        (try? String(contentsOfFile: root + "/\(name).log", encoding: .utf8)) ?? "(no log)"
    }

    /// The last lines of each role's log that exists, headed by its name, for a failure message.
    func roleLogs(_ names: [String], lines: Int = 40) -> String {
        names.filter { FileManager.default.fileExists(atPath: root + "/\($0).log") }.map { name in
            "--- \(name):\n" + log(name).split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
        }.joined(separator: "\n")
    }
}

/// The `code` of the first error in an OCI error body (`{"errors": [{"code", …}]}`).
func errorCode(_ body: ByteBuffer) -> String? {
    guard let json = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any],
        let errors = json["errors"] as? [[String: Any]]
    else { return nil }
    return errors.first?["code"] as? String
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Every suite that starts a cluster of real processes is nested here, so the suites run one
/// after another: on two cores, clusters started side by side starve each other's heartbeats and
/// timeouts, and tests would measure the machine's load rather than Speedy.
@Suite(.serialized) struct ProcessSuites {}

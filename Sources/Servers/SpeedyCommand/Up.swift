import ArgumentParser
import Foundation
import MetaServer
import ImageServer
import NIOCore
import ServerSupport
import SpeedyClients
import SpeedyCore
import Synchronization
import CommandLineSupport

/// `speedy up`: a whole cluster on this machine, as child processes on loopback.
struct Up: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a local cluster: master, GROUPS groups of REPLICAS chunkservers, metaserver, imageserver.",
        discussion: """
            Every role runs as a child process on 127.0.0.1: the master on --master-port (8099), \
            chunkservers from --chunkserver-port (7657) upward, the metaserver on --meta-port (8100) \
            and the registry (imageserver) on --registry-port (6788). Data lives under --data, one \
            directory per role, so starting again on the same directory keeps everything. \
            Each role has a secret of its own in DATA/credentials and may call only the routes its \
            role needs (DATA/credentials/roles, the role table); DATA/cluster-secret is the \
            operator's (made on first start, mode 0600), which chunktool, transfer and \
            speedy-console run from the same directory find. `speedy credentials --out \
            DATA/credentials --operator-secret DATA/cluster-secret` remakes the table after a \
            secret file is edited. A role that exits unexpectedly is restarted, with a growing pause between tries. \
            Every chunkserver is on this machine, so the members of a group share a failure zone: \
            the master runs with --allow-same-zone (a cluster that survives losing a host needs \
            chunkservers on several). \
            Ctrl-C or SIGTERM stops every child cleanly.
            """
    )

    @Option(help: "Directory for all the cluster's data.")
    var data = "./speedy-data"

    @Option(help: "Number of chunkserver groups.")
    var groups = 1

    @Option(help: "Chunkservers per group (every chunk is written to each).")
    var replicas = 3

    @Option(help: "Port of the chunkmaster.")
    var masterPort = 8099

    @Option(help: "Port of the first chunkserver; the others follow.")
    var chunkserverPort = 7657

    @Option(help: "Port of the metaserver.")
    var metaPort = 8100

    @Option(help: "Port of the imageserver (the registry clients push to).")
    var registryPort = 6788

    @Option(help: "Size of each chunkserver's volume files.")
    var volumeSize = SizeArgument(bytes: 256 << 20)

    @Option(help: "Free space each chunkserver keeps in reserve.")
    var reserve = SizeArgument(bytes: 256 << 20)

    @Option(help: "How often each chunkserver looks for volumes to compact (0: only when asked).")
    var compactEvery = DurationArgument(.seconds(60))

    @Option(help: "Collect garbage in the background this often (e.g. 1h), compacting volumes after; off unless given (`chunktool gc` runs it by hand).")
    var gcEvery: DurationArgument?

    @Flag(help: "Require logins on the registry: makes the user admin with a generated password (printed, and kept in DATA/admin-password); anonymous users get nothing.")
    var auth = false

    @Flag(help: "Serve the registry over HTTPS with a CA made for this cluster (DATA/tls/ca.crt; skopeo --dest-cert-dir DATA/tls).")
    var tls = false

    @Option(help: ArgumentHelp("Retention rules for the metaserver (docs/gc.md, \"Retention\"); applied before each --gc-every collection and by `chunktool retention`.", valueName: "path"))
    var retention: String?

    @Option(help: ArgumentHelp("Sync jobs for the metaserver (docs/registry.md, \"Replication\"): copies between registries, on a schedule.", valueName: "path"))
    var sync: String?

    @OptionGroup(title: "Pull-through cache") var upstreams: UpstreamOptions

    func validate() throws {
        guard (1...64).contains(groups) else { throw ValidationError("--groups must be between 1 and 64") }
        guard (1...9).contains(replicas) else { throw ValidationError("--replicas must be between 1 and 9") }
        _ = try upstreams.upstreams()
        // The metaserver would refuse them at its start; said here, before anything starts.
        do {
            _ = try retention.map { path throws(ReloadableFileError) in try RetentionRules(retentionFile: path) }
            _ = try sync.map { path throws(ReloadableFileError) in try SyncJobs(syncFile: path) }
        } catch {
            throw ValidationError("\(error)")
        }
        guard [masterPort, metaPort, registryPort].allSatisfy({ (1...65535).contains($0) }),
            (1...(65535 - groups * replicas)).contains(chunkserverPort)
        else {
            throw ValidationError("ports must be between 1 and 65535")
        }
    }

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let root = URL(fileURLWithPath: data).standardizedFileURL.path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let secretPath = root + "/cluster-secret"
        let secret: ClusterSecret
        do {
            secret = try ClusterSecret.loadOrCreate(path: secretPath)
        } catch {
            throw ValidationError("cannot set up the cluster secret: \(error)")
        }
        var cluster = ClusterTransport(secret: secret)
        cluster.boundCredentials = true
        // Each role gets a secret of its own and the table of them all; DATA/cluster-secret is the
        // operator's, for the tools run from here.
        let credentials = RoleCredentialFiles(directory: root + "/credentials", operatorSecret: secretPath)
        do {
            try credentials.make()
        } catch {
            throw ValidationError("cannot set up the role credentials in \(credentials.directory): \(error)")
        }
        let supervisor = Supervisor(executable: executable, commonArguments: ["--role-table", credentials.tablePath])
        func secretFlag(_ role: ClusterRole) -> [String] { ["--cluster-secret-file", credentials.secretPath(role)] }
        StopSignal.catchSignals()
        let masterURL = "http://127.0.0.1:\(masterPort)"
        try supervisor.start(
            name: "chunkmaster",
            arguments: ["chunkmaster", "--listen", "127.0.0.1:\(masterPort)", "--data", root + "/master", "--allow-same-zone"]
                + secretFlag(.chunkmaster))
        guard await waitForHealth(MasterClient(baseURL: masterURL, transport: cluster), stop: { StopSignal.isRequested }) else {
            await supervisor.stopAll()
            if StopSignal.isRequested { return }
            throw CleanExit.message("error: the chunkmaster did not come up on port \(masterPort); is the port taken?")
        }
        let servers = try startChunkservers(supervisor, root: root, masterURL: masterURL, secretFlag(.chunkserver))
        let access = try startFrontRoles(supervisor, root: root, masterURL: masterURL, secretFlag)
        let state = await waitUntilWritable(
            MasterClient(baseURL: masterURL, timeout: .seconds(2), transport: cluster), chunkservers: servers.map(\.0)
        ) { StopSignal.isRequested }
        // SIGHUP to `speedy up` goes on to every role (secret, token key and certificate rotation).
        let forwarder = Task {
            var passed = 0
            while !Task.isCancelled {
                let count = StopSignal.hangUpCount.load(ordering: .relaxed)
                if count != passed {
                    passed = count
                    supervisor.signalAll(SIGHUP)
                    say("speedy up: passed SIGHUP to every role")
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        if !StopSignal.isRequested {
            printBanner(state, root: root, servers: servers, notes: access.notes)
            await StopSignal.wait()
        }
        forwarder.cancel()
        say("stopping…")
        await supervisor.stopAll()
    }

    /// Starts `--groups` groups of `--replicas` chunkservers; returns their ids and addresses.
    private func startChunkservers(
        _ supervisor: Supervisor, root: String, masterURL: String, _ secretFlag: [String]
    ) throws -> [(String, String)] {
        var servers: [(String, String)] = []
        for group in 1...groups {
            for replica in 1...replicas {
                let port = chunkserverPort + (group - 1) * replicas + (replica - 1)
                let id = "g\(group)-cs\(replica)"
                try supervisor.start(
                    name: id,
                    arguments: [
                        "chunkserver", "--master", masterURL, "--group", String(group), "--listen", "127.0.0.1:\(port)",
                        "--data", root + "/group-\(group)/\(id)", "--id", id, "--volume-size", String(volumeSize.bytes),
                        "--reserve", String(reserve.bytes), "--compact-every", DurationText.format(compactEvery.duration),
                    ] + secretFlag)
                servers.append((id, "127.0.0.1:\(port)"))
            }
        }
        return servers
    }

    /// Starts the metaserver and the imageserver; returns the registry's login and TLS flags and notes.
    private func startFrontRoles(
        _ supervisor: Supervisor, root: String, masterURL: String, _ secretFlag: (ClusterRole) -> [String]
    ) throws -> (arguments: [String], notes: [String]) {
        var metaArguments = ["metaserver", "--listen", "127.0.0.1:\(metaPort)", "--data", root + "/meta", "--master", masterURL]
        if let gcEvery {
            metaArguments += ["--gc-every", DurationText.format(gcEvery.duration), "--gc-compact"]
        }
        if let retention { metaArguments += ["--retention", retention] }
        if let sync { metaArguments += ["--sync", sync] }
        try supervisor.start(name: "metaserver", arguments: metaArguments + secretFlag(.metaserver))
        let access = try registryAccess(root: root)
        try supervisor.start(
            name: "imageserver",
            arguments: ["imageserver", "--listen", "127.0.0.1:\(registryPort)", "--master", masterURL, "--meta", "http://127.0.0.1:\(metaPort)"]
                + ["--audit-log", root + "/audit.log"] + access.arguments + upstreams.arguments + secretFlag(.imageserver))
        return access
    }

    /// Says whether the cluster is ready, where each role listens, and what to try first.
    private func printBanner(_ state: RegistryState, root: String, servers: [(String, String)], notes: [String]) {
        switch state {
        case .ready: say("Speedy is up (data in \(root))")
        case .notReady(let reason):
            say("Speedy started, but the registry is not ready yet: \(reason) (data in \(root))")
        }
        say("  registry      \(tls ? "https" : "http")://127.0.0.1:\(registryPort)   (OCI Distribution API: push and pull here)")
        for line in notes { say(line) }
        say("  chunkmaster   http://127.0.0.1:\(masterPort)")
        say("  metaserver    http://127.0.0.1:\(metaPort)")
        for (id, addr) in servers { say("  chunkserver   \(id)  http://\(addr)") }
        say("  audit log     \(root)/audit.log   (pushes, deletes and refused logins, a JSON line each)")
        say("  credentials   \(root)/cluster-secret (the operator's: chunktool, transfer and speedy-console find it from this")
        say("                directory or SPEEDY_CLUSTER_SECRET_FILE); each role's own in \(root)/credentials")
        let tlsFlag = tls ? "--dest-cert-dir \(root)/tls" : "--dest-tls-verify=false"
        let credentials = auth ? " --dest-creds admin:$(cat \(root)/admin-password)" : ""
        say("Try: skopeo copy \(tlsFlag)\(credentials) docker-archive:image.tar docker://127.0.0.1:\(registryPort)/demo:latest")
        say("     SPEEDY_MASTER=http://127.0.0.1:\(masterPort) chunktool status    (Ctrl-C stops the cluster)")
    }

    /// The imageserver's login and TLS flags for --auth and --tls, making on first start what
    /// they need under `root` (kept on later starts, so the password and the CA stay the same).
    private func registryAccess(root: String) throws -> (arguments: [String], notes: [String]) {
        var arguments: [String] = []
        var notes: [String] = []
        if auth {
            let passwordFile = root + "/admin-password"
            let htpasswd = root + "/htpasswd"
            let accessFile = root + "/access"
            var created: String?
            if !FileManager.default.fileExists(atPath: htpasswd) {
                let password = String(ClusterSecret.generate().value.prefix(24))
                try SecretFile.write(password + "\n", to: passwordFile)
                try SecretFile.write(UserFile.line(user: "admin", password: password) + "\n", to: htpasswd)
                created = password
            }
            if !FileManager.default.fileExists(atPath: accessFile) {
                try SecretFile.write("# who  repositories  actions   (see docs/security.md)\nadmin  **  pull,push,delete\n", to: accessFile)
            }
            _ = try ClusterSecret.loadOrCreate(path: root + "/token-key")
            arguments += ["--htpasswd", htpasswd, "--access", accessFile, "--token-key-file", root + "/token-key"]
            // The password is printed when it is made; later starts say where it is.
            let shown = created.map { "admin / \($0)" } ?? "admin"
            notes.append("  login         \(shown)   (password in \(passwordFile); anonymous users get nothing)")
        }
        if tls {
            let files = try LocalCertificateAuthority.make(publicDirectory: root + "/tls", privateDirectory: root + "/tls-private")
            arguments += ["--tls-cert", files.serverCertificate, "--tls-key", files.serverKey]
            notes.append("  TLS CA        \(files.caCertificate)   (skopeo --dest-cert-dir \(root)/tls, curl --cacert \(files.caCertificate))")
        }
        return (arguments, notes)
    }

    /// What the registry said of itself when the wait ended.
    enum RegistryState {
        case ready
        case notReady(String)
    }

    /// Waits (up to a minute) until every chunkserver started has joined its group and the
    /// imageserver reports to the master that it is ready: the metaserver answers and a group takes
    /// writes, so a push right after the banner succeeds and lands on every replica. (A group is
    /// writable as soon as the members already there are; a chunk written before the last one
    /// joins would miss it.)
    private func waitUntilWritable(_ client: MasterClient, chunkservers: [String], stop: () -> Bool) async -> RegistryState {
        var reason = "the imageserver has not reported to the master"
        let started = ContinuousClock.now
        var joinedAt: ContinuousClock.Instant?
        var told = false
        while ContinuousClock.now - started < .seconds(60), !stop() {
            if let snapshot = try? await client.snapshot() {
                let present = Set(snapshot.groups.flatMap(\.members).filter { !$0.status.isAbsent && $0.status != .initializing }.map(\.id))
                let joined = chunkservers.allSatisfy(present.contains)
                if joined { joinedAt = joinedAt ?? .now } else { reason = "not every chunkserver has joined its group" }
                if let registry = snapshot.imageservers?.first {
                    // The imageserver fetches the map every second: one fetched since the last join.
                    if let joinedAt, ContinuousClock.now - joinedAt > .milliseconds(1100), registry.ready, registry.status == .up {
                        return .ready
                    }
                    if joined { reason = registry.notReadyReason ?? "the imageserver has not reported to the master" }
                }
            }
            if !told, ContinuousClock.now - started > .seconds(3) {
                say("waiting for the cluster to take writes…")
                told = true
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return .notReady(reason)
    }

    private func waitForHealth(_ client: MasterClient, stop: () -> Bool) async -> Bool {
        for _ in 0..<100 where !stop() {
            if await client.isHealthy() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}

/// Prints a line at once (stdout to a pipe is block-buffered, and these lines are the interface).
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

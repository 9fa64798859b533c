import ArgumentParser
import ConsoleModel
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import ToolSupport
import Synchronization

/// Set by SIGINT/SIGTERM; the draw loop sees it and restores the terminal before exiting.
let stopRequested = Atomic<Bool>(false)

/// `speedy-console`: a live dashboard of the cluster, like htop for Speedy.
@main
struct SpeedyConsole: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "speedy-console",
        abstract: "A live dashboard of group health, disk fill, throughput and events.",
        discussion: """
            Reads the master's cluster snapshot once a second (one request each time). Keys: arrows \
            or j/k move, Enter shows the server's detail, Tab switches panes, / filters, ? helps, q \
            quits. Set NO_COLOR for plain glyphs without colours.
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "Seconds between refreshes.")
    var interval: Double = 1

    func validate() throws {
        guard interval >= 0.2 else { throw ValidationError("--interval must be at least 0.2 seconds") }
    }

    func run() throws {
        let transport = options.transport
        let url = options.url
        Self.catchStopSignals()
        // A short timeout: an unreachable master should show as such within two seconds.
        let poller = Poller(client: MasterClient(baseURL: url, timeout: .seconds(2), transport: transport), interval: interval)
        let actions = ActionRunner(
            client: MasterClient(baseURL: url, transport: transport), masterURL: url,
            secretPath: ClusterOptions.secretPath(flag: options.cluster.clusterSecretFile), caPath: options.cluster.ca)
        let polling = Task.detached { await poller.run() }
        defer { polling.cancel() }

        let noColor = ProcessInfo.processInfo.environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        let terminal = try Terminal(allowColor: !noColor)
        defer { terminal.close() }
        let utf8 = (ProcessInfo.processInfo.environment["LC_ALL"] ?? ProcessInfo.processInfo.environment["LC_CTYPE"]
            ?? ProcessInfo.processInfo.environment["LANG"] ?? "").uppercased().contains("UTF-8")
        let dashboard = Dashboard(glyphs: terminal.colors && utf8 ? .unicode : .ascii)
        var screen = Screen(state: ConsoleState(master: url))
        while !stopRequested.load(ordering: .relaxed) {
            if let event = terminal.readKey() {
                switch event {
                case .resize: screen.dirty = true
                case .key(let key):
                    if !screen.state.handle(key) { return }
                    for action in screen.state.takeActions() { actions.run(action) }
                    screen.dirty = true
                }
            }
            if let notice = actions.newNotice() {
                screen.state.notice = notice
                screen.dirty = true
            }
            let now = currentTimeMillis()
            screen.take(poller.latest(), nowMs: now)
            if screen.dirty {
                let (width, height) = terminal.size
                terminal.draw(dashboard.render(screen.state, width: width, height: height, nowMs: now))
                screen.dirty = false
            }
        }
    }

    /// SIGINT, SIGTERM and SIGHUP set ``stopRequested``; the draw loop then gives the terminal back.
    private static func catchStopSignals() {
        // A parent may have left these blocked or ignored; the console must always be able to quit
        // and give the terminal back.
        var wanted = sigset_t()
        sigemptyset(&wanted)
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&wanted, sig) }
        pthread_sigmask(SIG_UNBLOCK, &wanted, nil)
        signal(SIGINT) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGTERM) { _ in stopRequested.store(true, ordering: .relaxed) }
        signal(SIGHUP) { _ in stopRequested.store(true, ordering: .relaxed) }
    }
}

/// What the draw loop shows and whether it must be drawn again.
struct Screen {
    var state: ConsoleState
    var dirty = true
    /// The poller's version last shown.
    private var seen = -1
    private var lastSecond: Int64 = -1

    init(state: ConsoleState) { self.state = state }

    /// Takes a new snapshot or error from the poller, and once a second the retry countdown.
    mutating func take(_ latest: Poller.Latest, nowMs now: Int64) {
        if latest.version != seen {
            seen = latest.version
            if let snapshot = latest.snapshot {
                state.snapshot = snapshot
                state.trackers = snapshot.trackers ?? []
                state.updatedAtMs = latest.updatedAtMs
            }
            state.connectionError = latest.error
            dirty = true
        }
        if now / 1000 != lastSecond {
            lastSecond = now / 1000
            state.retryInSeconds = latest.retryAtMs.map { max(0, Int(($0 - now + 999) / 1000)) } ?? 0
            dirty = dirty || latest.error != nil
        }
    }
}

/// Fetches the snapshot in the background, backing off (1, 2, 4, 8 s) while the master is away.
final class Poller: Sendable {
    struct Latest: Sendable {
        var version = 0
        var snapshot: ClusterSnapshot?
        var updatedAtMs: Int64?
        var error: String?
        var retryAtMs: Int64?
    }

    private let client: MasterClient
    private let interval: Double
    private let state = Mutex(Latest())

    init(client: MasterClient, interval: Double) {
        self.client = client
        self.interval = interval
    }

    func latest() -> Latest { state.withLock { $0 } }

    func run() async {
        var failures = 0
        while !Task.isCancelled {
            var delay = interval
            do {
                let snapshot = try await client.snapshot(historySeconds: 60, events: 50)
                failures = 0
                state.withLock {
                    $0.version += 1
                    $0.snapshot = snapshot
                    $0.updatedAtMs = currentTimeMillis()
                    $0.error = nil
                    $0.retryAtMs = nil
                }
            } catch {
                failures += 1
                delay = min(8, pow(2, Double(failures - 1)))
                let reason: String =
                    switch error {
                    case .unreachable: "cannot connect"
                    case .status(_, let code, _): "HTTP \(code)"
                    case .badResponse: "unexpected answer"
                    }
                let retryAt = currentTimeMillis() + Int64(delay * 1000)
                state.withLock {
                    $0.version += 1
                    $0.error = reason
                    $0.retryAtMs = retryAt
                }
            }
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1000)))
        }
    }
}

/// Carries out the actions the operator confirmed, off the draw loop, and keeps what came of
/// each for the footer.
final class ActionRunner: Sendable {
    private let client: MasterClient
    private let masterURL: String
    private let secretPath: String?
    private let caPath: String?
    private let notice = Mutex<String?>(nil)

    init(client: MasterClient, masterURL: String, secretPath: String?, caPath: String?) {
        self.client = client
        self.masterURL = masterURL
        self.secretPath = secretPath
        self.caPath = caPath
    }

    /// What an action came to since the last call, if anything.
    func newNotice() -> String? {
        notice.withLock { text in
            defer { text = nil }
            return text
        }
    }

    /// Starts `action` in the background.
    func run(_ action: ConsoleAction) {
        switch action {
        case .setStatus(let server, let status):
            Task.detached {
                let text: String
                do {
                    _ = try await self.client.setStatus(of: server, to: status)
                    text = "\(server) set to \(status.rawValue)"
                } catch {
                    text = "could not set \(server): \(error)"
                }
                self.notice.withLock { $0 = text }
            }
        case .verify(let group):
            notice.withLock { $0 = startVerify(group: group) }
        }
    }

    /// Runs `chunktool verify --group G` beside the console; it reports its progress to the master,
    /// so the jobs pane shows it.
    private func startVerify(group: UInt32) -> String {
        let directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        let process = Process()
        process.executableURL = directory.appendingPathComponent("chunktool")
        var arguments = ["verify", "--group", String(group), "--master", masterURL, "--json"]
        if let secretPath { arguments += ["--cluster-secret-file", URL(fileURLWithPath: secretPath).standardizedFileURL.path] }
        if let caPath { arguments += ["--ca", caPath] }
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["SPEEDY_ACTOR"] = ToolActor.current
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        process.terminationHandler = { ended in
            let outcome = ended.terminationStatus == 0 ? "clean" : (ended.terminationStatus == 1 ? "found problems" : "could not run")
            self.notice.withLock { $0 = "verify of group \(group) ended: \(outcome)" }
        }
        do {
            try process.run()
            return "verify of group \(group) started (pid \(process.processIdentifier))"
        } catch {
            return "cannot start chunktool verify: \(error)"
        }
    }
}

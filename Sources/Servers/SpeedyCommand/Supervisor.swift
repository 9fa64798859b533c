import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Starts, restarts and stops the child processes of `speedy up`.
///
/// A child that exits while the cluster is not stopping is started again after a pause that
/// doubles with each quick failure (1 s up to 30 s) and resets once a child has run for a minute,
/// so a role that crashes is back in seconds and one that cannot start does not spin.
///
/// Its state is a `Mutex`: every change is short and never waits (docs/architecture.md). Exits
/// arrive on Foundation's termination handlers; the waits are tasks, never a blocked thread.
final class Supervisor: Sendable {
    private struct Child {
        var name: String
        var arguments: [String]
        var process: Process
        var startedAt: ContinuousClock.Instant
        var backoff: Duration
    }

    private struct State {
        var children: [Child] = []
        var stopping = false
    }

    private let executable: String
    private let commonArguments: [String]
    private let state = Mutex(State())
    /// The names of children that exited once stopping began, for ``stopAll()`` to count.
    private let exits = AsyncStream<String>.makeStream()

    static let firstBackoff: Duration = .seconds(1)
    static let maximumBackoff: Duration = .seconds(30)
    /// A child that ran this long before exiting is restarted after the first pause again.
    static let stableAfter: Duration = .seconds(60)
    /// How long children get between SIGTERM and SIGKILL.
    static let stopGrace: Duration = .seconds(10)

    /// - Parameter commonArguments: appended to every child's arguments (the secret file).
    init(executable: String, commonArguments: [String] = []) {
        self.executable = executable
        self.commonArguments = commonArguments
    }

    /// Starts `executable` with `arguments` as the child `name`.
    func start(name: String, arguments: [String]) throws {
        let process = prepare(name: name, arguments: arguments)
        // Recorded before it runs: a child that dies at once must still be found and restarted.
        state.withLock {
            $0.children.append(Child(name: name, arguments: arguments, process: process, startedAt: .now, backoff: Self.firstBackoff))
        }
        try process.run()
    }

    private func prepare(name: String, arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + commonArguments
        process.terminationHandler = { [weak self] process in self?.exited(name: name, status: process.terminationStatus) }
        return process
    }

    /// Called when a child exits: unless the cluster is stopping, restart it after its pause.
    private func exited(name: String, status: Int32) {
        let pause: Duration? = state.withLock { state in
            guard !state.stopping, let index = state.children.firstIndex(where: { $0.name == name }) else { return nil }
            if ContinuousClock.now - state.children[index].startedAt >= Self.stableAfter { state.children[index].backoff = Self.firstBackoff }
            let pause = state.children[index].backoff
            state.children[index].backoff = min(pause * 2, Self.maximumBackoff)
            return pause
        }
        guard let pause else {
            exits.continuation.yield(name)
            return
        }
        say("speedy up: \(name) exited unexpectedly (status \(status)); restarting it in \(pause.components.seconds) s")
        Task { [weak self] in
            try? await Task.sleep(for: pause)
            self?.restart(name: name)
        }
    }

    private func restart(name: String) {
        guard let arguments = state.withLock({ $0.stopping ? nil : $0.children.first(where: { $0.name == name })?.arguments }) else { return }
        let process = prepare(name: name, arguments: arguments)
        let wanted = state.withLock { state in
            guard !state.stopping, let index = state.children.firstIndex(where: { $0.name == name }) else { return false }
            state.children[index].process = process
            state.children[index].startedAt = .now
            return true
        }
        // Stopping began meanwhile: it must not outlive the cluster.
        guard wanted else { return }
        do {
            try process.run()
            say("speedy up: \(name) restarted (pid \(process.processIdentifier))")
        } catch {
            say("speedy up: cannot restart \(name): \(error)")
        }
    }

    /// Sends `signal` to every child still running (SIGHUP: re-read secrets and certificates).
    func signalAll(_ signal: Int32) {
        for child in state.withLock({ $0.children }) where child.process.isRunning { kill(child.process.processIdentifier, signal) }
    }

    /// SIGTERM to every child (the last started first), then SIGKILL to any still running after
    /// ``stopGrace``. Returns when every child has exited, or has been sent SIGKILL.
    func stopAll() async {
        let children = state.withLock {
            $0.stopping = true
            return $0.children
        }
        var running = Set(children.filter(\.process.isRunning).map(\.name))
        for child in children.reversed() where running.contains(child.name) { kill(child.process.processIdentifier, SIGTERM) }
        let deadline = Task {
            try? await Task.sleep(for: Self.stopGrace)
            self.exits.continuation.yield("")
        }
        defer { deadline.cancel() }
        for await name in exits.stream {
            // A child that exited between the list and the signal may be named though not waited for.
            running.remove(name)
            // The running flag is set before the termination handler runs; check it too.
            running = running.filter { name in children.first { $0.name == name }?.process.isRunning ?? false }
            if running.isEmpty { return }
            if name.isEmpty { break }
        }
        for child in children where running.contains(child.name) && child.process.isRunning {
            say("speedy up: \(child.name) did not stop in time; killing it")
            kill(child.process.processIdentifier, SIGKILL)
        }
    }
}

/// SIGINT and SIGTERM while `speedy up` runs: a plain handler sets a flag and writes a byte to a
/// pipe, the only things a signal handler may do; ``wait()`` reads the pipe on a thread of its own.
///
/// A plain handler, installed at once: a dispatch signal source takes effect only later, and a
/// SIGTERM in between killed `speedy up` and left its children running.
enum StopSignal {
    /// Set by the handler (an atomic store is safe there).
    private static let requested = Atomic<Bool>(false)
    /// The pipe the handler writes to; -1 until ``catchSignals()`` made it.
    private static let readEnd = Atomic<Int32>(-1)
    private static let writeEnd = Atomic<Int32>(-1)

    /// Installs the handlers for SIGINT and SIGTERM.
    static func catchSignals() {
        var ends: [Int32] = [-1, -1]
        if pipe(&ends) == 0 {
            readEnd.store(ends[0], ordering: .relaxed)
            writeEnd.store(ends[1], ordering: .relaxed)
        }
        signal(SIGINT) { _ in StopSignal.signalled() }
        signal(SIGTERM) { _ in StopSignal.signalled() }
        // SIGHUP asks the roles to re-read their secrets and certificates; `speedy up` passes it
        // on (``hangUps``) rather than dying of it.
        _ = hangUpCount.load(ordering: .relaxed)  // made now, not first inside the handler
        signal(SIGHUP) { _ in StopSignal.hangUpCount.add(1, ordering: .relaxed) }
    }

    /// How many SIGHUPs came.
    static let hangUpCount = Atomic<Int>(0)

    private static func signalled() {
        requested.store(true, ordering: .relaxed)
        var byte: UInt8 = 1
        _ = write(writeEnd.load(ordering: .relaxed), &byte, 1)
    }

    /// Whether SIGINT or SIGTERM came.
    static var isRequested: Bool { requested.load(ordering: .relaxed) }

    /// Returns on SIGINT or SIGTERM (at once if one came already).
    static func wait() async {
        let fd = readEnd.load(ordering: .relaxed)
        guard fd >= 0 else {
            // No pipe (out of descriptors at start): look at the flag now and then instead.
            while !isRequested { try? await Task.sleep(for: .milliseconds(100)) }
            return
        }
        guard !isRequested else { return }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                var byte: UInt8 = 0
                while read(fd, &byte, 1) < 0 && errno == EINTR {}
                done.resume()
            }
        }
    }
}

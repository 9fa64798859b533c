import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs programs to completion for tests.
///
/// Output goes through a file, not a pipe: a program that leaves a daemon behind (tmux starts its
/// server, pg_ctl the database) would hold a pipe open and the read would never end. posix_spawn
/// and waitpid rather than Foundation's Process, whose exit monitoring is not reliable from test
/// threads.
///
/// Tests run on Swift's cooperative pool, which has a thread per core (two on CI): a test that
/// blocks one of them waiting for a program stalls every other test in the process, and two such
/// waits stop them all (a 20 s stall once timed out a tracker test's 5 s requests). So ``run``
/// waits on a thread of its own; ``runBlocking`` is for code that is on one already.
public enum SpawnedProgram {
    /// Why a program could not be started.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// What becomes of a program's standard error.
    public enum ErrorOutput: Sendable {
        /// Into the output, interleaved with standard output.
        case merged
        /// To /dev/null: the output is standard output alone (JSON a test decodes).
        case discarded
    }

    /// Runs `executable` with `arguments` in exactly `environment`, standard input from /dev/null,
    /// waiting on a thread of its own; returns its exit status (128 + signal when killed) and its
    /// output.
    @discardableResult
    public static func run(
        _ executable: String, _ arguments: [String], environment: [String: String], errors: ErrorOutput = .merged
    ) async throws -> (status: Int32, output: String) {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runBlocking(executable, arguments, environment: environment, errors: errors) })
            }
        }
    }

    /// ``run(_:_:environment:errors:)`` on the caller's thread, which it blocks until the program
    /// exits: only for callers on a thread of their own, never from a test's async code.
    @discardableResult
    public static func runBlocking(
        _ executable: String, _ arguments: [String], environment: [String: String], errors: ErrorOutput = .merged
    ) throws -> (status: Int32, output: String) {
        let path = NSTemporaryDirectory() + "speedy-run-" + UUID().uuidString
        defer { unlink(path) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        switch errors {
        case .merged: posix_spawn_file_actions_adddup2(&actions, 1, 2)
        case .discarded: posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        // The test runner's threads may block signals; a child must start with none blocked.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
        var pid = pid_t()
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { envp.forEach { free($0) } }
        let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard rc == 0 else { throw Failure("cannot start \(executable): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let data = FileManager.default.contents(atPath: path) ?? Data()
        let exited = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exited, String(decoding: data, as: UTF8.self))
    }
}

extension Process {
    /// Waits for the process to exit without blocking the caller's thread (``SpawnedProgram``
    /// says why that matters): `waitUntilExit` would hold a thread of the test's pool.
    public func exited() async {
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
    }

    /// Sends `signal` now, and waits for the exit on a thread of its own, sending SIGKILL if it
    /// has not come after `grace`; then runs `cleanup`. For `defer`, which cannot await.
    public func stop(signal: Int32 = SIGTERM, grace: TimeInterval = 15, then cleanup: @escaping @Sendable () -> Void = {}) {
        guard isRunning else { return cleanup() }
        kill(processIdentifier, signal)
        nonisolated(unsafe) let process = self
        Thread.detachNewThread {
            let deadline = Date().addingTimeInterval(grace)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            cleanup()
        }
    }
}

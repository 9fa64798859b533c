import ArgumentParser
import Foundation
import SpeedyCore

/// The exit codes every Speedy tool keeps, which scripts rely on.
public enum ToolExit {
    /// All fine.
    public static let fine = ExitCode(0)
    /// The command ran and found problems.
    public static let problems = ExitCode(1)
    /// The command could not run (bad usage, unreachable master, refused request).
    public static let couldNotRun = ExitCode(2)

    /// Runs a root command with the contract's exit codes: ArgumentParser's own usage errors
    /// (which would exit 64) exit 2.
    public static func main<Root: AsyncParsableCommand>(_ root: Root.Type) async {
        do {
            var command = try Root.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let exit as ExitCode {
            Foundation.exit(exit.rawValue)
        } catch {
            let code = Root.exitCode(for: error)
            if code.rawValue == 0 { Root.exit(withError: error) }
            FileHandle.standardError.write(Data((Root.fullMessage(for: error) + "\n").utf8))
            Foundation.exit(code.rawValue == 1 ? 1 : 2)
        }
    }
}

/// Fails the command with exit status 2 and `message` on standard error.
public func couldNotRun(_ message: String) -> ExitCode {
    let tool = (CommandLine.arguments.first ?? "speedy").split(separator: "/").last.map(String.init) ?? "speedy"
    FileHandle.standardError.write(Data((tool + ": " + message + "\n").utf8))
    return ToolExit.couldNotRun
}

/// The part of a service error a person needs: the server's own message when it sent one.
public func reason(_ error: ServiceError) -> String {
    if error.httpStatus == 401 { return explain(error) }
    if case .status(_, _, let body?) = error { return body.message }
    return error.description
}

/// A service error with what to do about it, for the ones a person can fix (a missing secret).
public func explain(_ error: ServiceError) -> String {
    guard error.httpStatus == 401 else { return error.description }
    let hint =
        ClusterTransport.secret == nil
        ? "no cluster secret was given: use --cluster-secret-file, SPEEDY_CLUSTER_SECRET_FILE, or run from the directory holding speedy up's speedy-data/"
        : "the cluster secret given is not this cluster's"
    return "\(error.description) (\(hint))"
}

/// Prints `value` as pretty JSON on standard output.
public func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try WireJSON.encoder(pretty: true).encode(value), as: UTF8.self))
}

/// Options every command that talks to the master shares.
public struct MasterOptions: ParsableArguments {
    @Option(help: "Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).")
    public var master: String?

    @OptionGroup public var cluster: ClusterOptions

    public init() {}

    /// Sets up the secret and TLS before any client is made (ArgumentParser calls this after parsing).
    public func validate() throws {
        try cluster.configure(internalTLS: MasterLocation.speaksTLS(flag: master, assumeTLS: cluster.ca != nil))
        ClusterTransport.setActor(ToolActor.current)
    }

    /// The master's URL after flag, environment and default.
    public var url: String { MasterLocation.resolve(flag: master) }
    /// A client for it.
    public var client: MasterClient { MasterClient(baseURL: url) }

    /// The cluster snapshot, or exit status 2 with the reason.
    public func snapshot() async throws -> ClusterSnapshot {
        do {
            return try await client.snapshot()
        } catch {
            throw couldNotRun(explain(error))
        }
    }

    /// One group of the snapshot, or exit status 2 when the master does not know it.
    public func group(_ id: UInt32) async throws -> GroupSnapshot {
        guard let group = try await snapshot().groups.first(where: { $0.id == id }) else {
            throw couldNotRun("group \(id) is not known to the master at \(url)")
        }
        return group
    }
}

/// A duration on the command line: `500ms`, `90s`, `10m`, `1h`, `7d` (a bare number is seconds).
public struct DurationArgument: ExpressibleByArgument, Sendable {
    /// The duration.
    public let duration: Duration

    public init?(argument: String) {
        guard let duration = DurationText.parse(argument) else { return nil }
        self.duration = duration
    }

    /// Wraps a duration (for defaults).
    public init(_ duration: Duration) { self.duration = duration }

    public var defaultValueDescription: String { DurationText.format(duration) }
}

/// Who runs this tool, as the master's event log names them: `user@host (tool)`.
public enum ToolActor {
    /// The login name, host name and program name of this process, or `SPEEDY_ACTOR` when set
    /// (how the console names itself to the tools it starts).
    public static var current: String {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["SPEEDY_ACTOR"], !given.isEmpty { return given }
        let user = environment["SUDO_USER"] ?? environment["USER"] ?? environment["LOGNAME"] ?? getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) }
            ?? "uid\(getuid())"
        var name = [CChar](repeating: 0, count: 256)
        let host = gethostname(&name, name.count) == 0 ? String(cString: name) : "localhost"
        let tool = (CommandLine.arguments.first ?? "tool").split(separator: "/").last.map(String.init) ?? "tool"
        return "\(user)@\(host) (\(tool))"
    }
}

import ArgumentParser
import Foundation
import CommandLineSupport
import SpeedyClients
import SpeedyCore

/// Options every command that talks to the master shares.
public struct MasterOptions: ParsableArguments {
    @Option(help: "Base URL of the chunkmaster (default: $SPEEDY_MASTER, else http://127.0.0.1:8099).")
    public var master: String?

    @OptionGroup public var cluster: ClusterOptions

    public init() {}

    /// Checks the secret file and the CA before any client is made (ArgumentParser calls this
    /// after parsing), so a bad one fails the command with exit status 2 and the reason.
    public func validate() throws {
        _ = try makeTransport()
    }

    /// How this tool reaches the cluster: the secret and CA of ``cluster``, TLS when the master's
    /// URL says so, and this tool's user as the actor the master's event log names.
    public func makeTransport() throws -> ClusterTransport {
        try cluster.transport(internalTLS: MasterLocation.speaksTLS(flag: master, assumeTLS: cluster.ca != nil), actor: ToolActor.current)
    }

    /// ``makeTransport()`` after ``validate()`` has passed. Should the files change between the two,
    /// the tool goes on without a secret, and the cluster's 401 (explained by ``explain(_:)``) says so.
    public var transport: ClusterTransport { (try? makeTransport()) ?? ClusterTransport(actor: ToolActor.current) }

    /// The master's URL after flag, environment and default.
    public var url: String { MasterLocation.resolve(flag: master, scheme: transport.scheme) }
    /// A client for it.
    public var client: MasterClient { MasterClient(baseURL: url, transport: transport) }

    /// The cluster snapshot, or exit status 2 with the reason.
    public func snapshot() async throws -> ClusterSnapshot {
        do {
            return try await client.snapshot()
        } catch {
            throw couldNotRun(explain(error))
        }
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
            ClusterOptions.secretPath(flag: cluster.clusterSecretFile) == nil
            ? "no cluster secret was given: use --cluster-secret-file, SPEEDY_CLUSTER_SECRET_FILE, or run from the directory holding speedy up's speedy-data/"
            : "the cluster secret given is not this cluster's; with a role table, give the operator's secret and set SPEEDY_ROLE_TABLE (or keep the table beside the secret)"
        return "\(error.description) (\(hint))"
    }

    /// One group of the snapshot, or exit status 2 when the master does not know it.
    public func group(_ id: UInt32) async throws -> GroupSnapshot {
        guard let group = try await snapshot().groups.first(where: { $0.id == id }) else {
            throw couldNotRun("group \(id) is not known to the master at \(url)")
        }
        return group
    }
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

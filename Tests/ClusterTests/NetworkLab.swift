import Foundation
import SpeedyTestSupport

/// Hosts on this machine for tests across a network: a thin wrapper over `Tests/Lab/speedy-lab`,
/// which makes each host a network namespace with its own shaped link into a bridge, with
/// addresses from 192.0.2.0/24 that exist only inside the lab.
final class NetworkLab: @unchecked Sendable {
    /// One host of the lab.
    struct Host: Sendable {
        var name: String
        var address: String
        var namespace: String
    }

    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Lab/speedy-lab").path
    static let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"

    /// Why no lab can be made here (not root, `ip netns add` refused, no tbf), or nil when it can.
    static let unavailableReason: String? = {
        guard let result = try? SpawnedProgram.runBlocking("/bin/bash", [script, "check"], environment: ClusterHarness.clusterEnvironment) else { return "cannot run \(script)" }
        return result.status == 0 ? nil : result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    /// Whether lab tests can run; prints why not once when they cannot.
    static let available: Bool = {
        if let reason = unavailableReason { print("lab tests skipped: \(reason)") }
        return unavailableReason == nil
    }()

    let name: String
    private(set) var hosts: [String: Host] = [:]

    /// Makes `hosts`, each with a link of `rate` (a tc rate such as `1gbit`).
    init(hosts names: [String], rate: String = "1gbit") async throws {
        name = "l" + String(UInt32.random(in: 0..<(1 << 20)), radix: 16)
        try await run(["up", name, rate] + names)
        for host in names {
            let address = try await run(["addr", name, host]).trimmingCharacters(in: .whitespacesAndNewlines)
            hosts[host] = Host(name: host, address: address, namespace: "\(name)-\(host)")
        }
    }

    subscript(_ host: String) -> Host { hosts[host]! }

    /// Removes every namespace of the lab (the processes in them must be stopped first). It
    /// blocks the caller, for `defer`; it takes a fraction of a second.
    func down() {
        _ = try? SpawnedProgram.runBlocking("/bin/bash", [Self.script, "down", name], environment: ClusterHarness.clusterEnvironment)
    }

    /// Unplugs `host`'s link: its packets are dropped, connections hang rather than reset.
    func cut(_ host: String) async throws { try await run(["cut", name, host]) }

    /// Plugs `host`'s link back in.
    func mend(_ host: String) async throws { try await run(["mend", name, host]) }

    /// `a` and `b` cannot reach each other; every other pair still can.
    func partition(_ a: String, _ b: String) async throws { try await run(["partition", name, a, b]) }

    /// Undoes ``partition(_:_:)``.
    func heal(_ a: String, _ b: String) async throws { try await run(["heal", name, a, b]) }

    /// Changes `host`'s link rate.
    func shape(_ host: String, _ rate: String) async throws { try await run(["shape", name, host, rate]) }

    /// Runs `executable` on `host` to completion: exit status and output.
    @discardableResult
    func exec(on host: String, _ executable: String, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ClusterHarness.run(Self.ip, ["netns", "exec", self[host].namespace, executable] + arguments)
    }

    @discardableResult
    private func run(_ arguments: [String]) async throws -> String {
        let result = try await ClusterHarness.run("/bin/bash", [Self.script] + arguments)
        guard result.status == 0 else { throw HarnessError("speedy-lab \(arguments.joined(separator: " ")) failed: \(result.output)") }
        return result.output
    }
}

import CommandLineSupport
import ArgumentParser
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import ToolSupport

/// `chunktool group list|add|remove`.
struct GroupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "group",
        abstract: "List groups, create one, drain one, or remove an empty one.",
        subcommands: [List.self, Add.self, Remove.self, Drain.self, Undrain.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every group: state, members, free space and chunks.",
            discussion: "Exit status 0 when the list was printed (chunktool status judges health), 2 when the master cannot be asked."
        )

        @OptionGroup var options: MasterOptions

        @Flag(help: "Print the groups as JSON (the master's group snapshots).")
        var json = false

        func run() async throws {
            let groups = try await options.snapshot().groups
            if json { return try printJSON(groups) }
            var rows = [["GROUP", "STATE", "MEMBERS", "RW", "FREE", "CHUNKS"]]
            for g in groups {
                rows.append([
                    String(g.id), g.state.rawValue + (g.draining == true ? ", draining" : ""), String(g.members.count), String(g.members.count { $0.status == .readWrite }),
                    ByteSize.format(g.diskFreeBytes), String(g.members.map(\.chunkCount).max() ?? 0),
                ])
            }
            print(groups.isEmpty ? "no groups" : Table.render(rows))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an empty group; chunkservers started with --group G then join it.",
            discussion: "Recorded in the master's event log. Exit status 0 when created, 2 when refused (the group exists) or the master cannot be asked."
        )

        @OptionGroup var options: MasterOptions

        @Argument(help: "The new group's id.")
        var group: UInt32

        @Flag(help: "Print the new group as JSON.")
        var json = false

        func run() async throws {
            let created: GroupSnapshot
            do {
                created = try await options.client.addGroup(group)
            } catch {
                throw couldNotRun(options.reason(error))
            }
            if json { return try printJSON(created) }
            print("group \(created.id) created (\(created.state.rawValue), no members yet)")
        }
    }
}

extension GroupCommand {
    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a group that has no members, or a drained one whose members hold no chunk (they are removed with it).",
            discussion: """
                Recorded in the master's event log with who removed it. A group with members can be \
                removed once drained (`chunktool group drain`) and collected (`chunktool gc`, after \
                its --grace): its members, holding nothing, are removed from the cluster with it \
                (their heartbeats are refused; stop them). A chunkserver that later heartbeats for \
                the group makes it again. Exit status 0 when removed, 2 when refused (unknown group, \
                members left in a group not drained, or a drained group's members still holding \
                chunks) or the master cannot be asked.
                """
        )

        @OptionGroup var options: MasterOptions

        @Argument(help: "The group to remove.")
        var group: UInt32

        func run() async throws {
            do {
                try await options.client.removeGroup(group)
            } catch {
                throw couldNotRun(options.reason(error))
            }
            print("group \(group) removed")
        }
    }
}

/// `chunktool server list|add|remove|set-status`.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "List, register, remove chunkservers or set their status.",
        subcommands: [List.self, Add.self, Remove.self, SetStatus.self]
    )

    /// One row of `server list --json`.
    struct Row: Codable {
        var id: String
        var group: UInt32
        var addr: String
        var status: ServerStatus
        var setStatus: ServerStatus?
        /// For a member fenced OFFLINE: the replacement it was fenced for.
        var fencedBy: String?
        var chunks: UInt64
        var diskFreeBytes: UInt64
        var lastHeartbeatAgeMs: Int64
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List chunkservers with their group, status, chunks and last heartbeat; spares show group 'spare'.",
            discussion: "Spares (speedy chunkserver --spare) are listed with group 'spare' (0 in --json, and --group 0 lists only them). Exit status 0 when the list was printed, 2 when the master cannot be asked."
        )

        @OptionGroup var options: MasterOptions

        @Option(help: "Only this group's servers.")
        var group: UInt32?

        @Flag(help: "Print the servers as JSON.")
        var json = false

        func run() async throws {
            let snapshot = try await options.snapshot()
            func row(_ m: MemberSnapshot, group: UInt32) -> Row {
                Row(id: m.id, group: group, addr: m.addr, status: m.status, setStatus: m.setStatus, fencedBy: m.fencedBy, chunks: m.chunkCount,
                    diskFreeBytes: m.diskFreeBytes, lastHeartbeatAgeMs: m.lastHeartbeatAgeMs)
            }
            var rows = snapshot.groups.filter { group == nil || $0.id == group }.flatMap { g in g.members.map { row($0, group: g.id) } }
            // Spares wait in group 0 until the master gives one a group.
            if group == nil || group == HeartbeatReport.spareGroup { rows += (snapshot.spares ?? []).map { row($0, group: HeartbeatReport.spareGroup) } }
            if json { return try printJSON(rows) }
            var table = [["SERVER", "GROUP", "ADDRESS", "STATUS", "SET BY OPERATOR", "CHUNKS", "FREE", "HEARTBEAT"]]
            for r in rows {
                table.append([
                    r.id, r.group == HeartbeatReport.spareGroup ? "spare" : String(r.group), r.addr, r.status.rawValue, (r.setStatus?.rawValue ?? "-") + (r.fencedBy.map { " (fenced for \($0))" } ?? ""), String(r.chunks),
                    ByteSize.format(r.diskFreeBytes), r.lastHeartbeatAgeMs < 0 ? "never" : "\(r.lastHeartbeatAgeMs) ms ago",
                ])
            }
            print(rows.isEmpty ? "no servers" : Table.render(table))
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a running chunkserver with the master.",
            discussion: """
                Asks the chunkserver at HOST:PORT for its id and group, then registers it. Chunkservers \
                also join by their first heartbeat; registering first lets a script put a replacement \
                in TRANSFERRING before it serves anything. Without --status, a server joining a group \
                that already holds chunks becomes TRANSFERRING. --zone names the failure zone of a \
                chunkserver started without one (default: its own --zone, else its host); the master \
                refuses a server whose zone another member of the group is in (ZONE_CONFLICT) unless \
                it runs with --allow-same-zone. Exit status 0 when registered (or registered already \
                in that group), 2 otherwise.
                """
        )

        @OptionGroup var options: MasterOptions

        @Argument(help: "The chunkserver's HOST:PORT.")
        var addr: String

        @Option(help: "The group it must serve (checked against the chunkserver's own).")
        var group: UInt32

        @Option(help: .init("Its failure zone, when it was started without --zone (checked against the chunkserver's own otherwise).", valueName: "name"))
        var zone: String?

        @Option(help: "rw or transferring (default: decided by the master: transferring when the server is empty and its group holds chunks).", transform: { text in
            let status = try SetStatus.parse(text)
            guard status == .readWrite || status == .transferring else { throw ValidationError("a new server starts rw or transferring") }
            return status
        })
        var status: ServerStatus?

        @Flag(help: "Print the server id and its group as JSON.")
        var json = false

        /// What `server add --json` prints.
        struct Added: Codable {
            var serverId: String
            var group: GroupSnapshot
        }

        func run() async throws {
            guard HostPort(parsing: addr) != nil else { throw couldNotRun("'\(addr)' is not HOST:PORT") }
            if let zone, !FailureZone.isValidName(zone) { throw couldNotRun("--zone must be 1 to \(FailureZone.maxLength) letters, digits, '.', '_' or '-'") }
            let stats: HeartbeatReport
            do {
                stats = try await ChunkServerClient(baseURL: addr, timeout: .seconds(5), transport: options.transport).stats()
            } catch {
                throw couldNotRun("cannot ask the chunkserver at \(addr) for its id: \(options.reason(error))")
            }
            guard stats.group == group else {
                throw couldNotRun("the chunkserver at \(addr) serves group \(stats.group), not \(group); restart it with --group \(group)")
            }
            if let zone, let own = stats.zone, own != zone {
                throw couldNotRun("the chunkserver at \(addr) is in zone \(own), not \(zone); restart it with --zone \(zone)")
            }
            var result: GroupSnapshot
            do {
                result = try await options.client.addServer(
                    ServerRegistration(id: stats.serverId, group: group, addr: addr, status: status, zone: zone ?? stats.zone))
            } catch {
                // Registered already (its heartbeat may have come first): fine when it is in this
                // group; the status asked for is then set.
                guard case .status(_, 409, let body?) = error, body.internalCode == .serverExists,
                    try await options.group(group).members.contains(where: { $0.id == stats.serverId })
                else { throw couldNotRun(options.reason(error)) }
                if let status {
                    do {
                        result = try await options.client.setStatus(of: stats.serverId, to: status)
                    } catch {
                        throw couldNotRun(options.reason(error))
                    }
                } else {
                    result = try await options.group(group)
                }
            }
            if json { return try printJSON(Added(serverId: stats.serverId, group: result)) }
            let member = result.members.first { $0.id == stats.serverId }
            print("server \(stats.serverId) at \(addr) is in group \(group) (\(member?.status.rawValue ?? "?"))")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove a DOWN or OFFLINE server from the cluster for good.",
            discussion: """
                Its heartbeats are refused afterwards; its chunks are not touched. A server still \
                serving must be set OFFLINE first. Exit status 0 when removed, 2 when refused.
                """
        )

        @OptionGroup var options: MasterOptions

        @Argument(help: "The server's id.")
        var server: String

        @Flag(help: "Print its former group as JSON.")
        var json = false

        func run() async throws {
            let result: GroupSnapshot
            do {
                result = try await options.client.removeServer(server)
            } catch {
                throw couldNotRun(options.reason(error))
            }
            if json { return try printJSON(result) }
            print("server \(server) removed from group \(result.id) (now \(result.state.rawValue))")
        }
    }

    struct SetStatus: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-status",
            abstract: "Set a server RW, RO or OFFLINE (or TRANSFERRING) by operator's order.",
            discussion: """
                rw clears the operator's setting, so the server's own report counts again; ro stops \
                writes to it (and so to its group); offline takes it out of reads and writes; \
                transferring makes it take writes but serve no reads until filled. The master keeps \
                the setting across restarts and logs it. Exit status 0 when set, 2 when refused.
                """
        )

        @OptionGroup var options: MasterOptions

        @Argument(help: "The server's id.")
        var server: String

        @Argument(help: "rw, ro, offline or transferring.", transform: { try SetStatus.parse($0) })
        var status: ServerStatus

        @Flag(help: "Print its group as JSON.")
        var json = false

        static func parse(_ text: String) throws -> ServerStatus {
            guard let status = ServerStatus(rawValue: text.uppercased()), StatusSetting.settable.contains(status) else {
                throw ValidationError("status must be rw, ro, offline or transferring, not '\(text)'")
            }
            return status
        }

        func run() async throws {
            let result: GroupSnapshot
            do {
                result = try await options.client.setStatus(of: server, to: status)
            } catch {
                throw couldNotRun(options.reason(error))
            }
            if json { return try printJSON(result) }
            let member = result.members.first { $0.id == server }
            print("server \(server) in group \(result.id) is \(member?.status.rawValue ?? status.rawValue); group \(result.state.rawValue)")
        }
    }
}

/// Aligned text columns.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max()! }
        return rows.map { row in
            zip(row, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }.joined(separator: "  ").trimmingTrailingSpaces()
        }.joined(separator: "\n")
    }
}

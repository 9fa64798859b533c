import Foundation
import Testing

/// The layering docs/architecture.md draws, checked against Package.swift and the sources: a
/// dependency that crosses a line (an HTTP client under the storage engine, PostgreSQL under the
/// chunkserver) fails here rather than growing unnoticed.
@Suite("Module graph")
struct ModuleGraphTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Each target's direct dependencies (targets and products, by name) as Package.swift lists them.
    static func targets() throws -> [String: Set<String>] {
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        var targets: [String: Set<String>] = [:]
        let pattern = try Regex(#"\.(?:target|executableTarget|testTarget)\(\s*name:\s*"(\w+)",\s*dependencies:\s*\[([^\]]*)\]"#)
        for match in manifest.matches(of: pattern) {
            guard let name = match.output[1].substring, let list = match.output[2].substring else { continue }
            // Every quoted name but the package names after `package:`.
            let names = list.matches(of: #/(package:\s*)?"([\w.-]+)"/#).filter { $0.output.1 == nil }.map { String($0.output.2) }
            targets[String(name)] = Set(names)
        }
        return targets
    }

    /// Everything `target` reaches through its dependencies.
    static func closure(of target: String, in graph: [String: Set<String>]) -> Set<String> {
        var seen: Set<String> = []
        var queue = Array(graph[target] ?? [])
        while let next = queue.popLast() {
            guard seen.insert(next).inserted else { continue }
            queue += graph[next] ?? []
        }
        return seen
    }

    /// The modules a source folder's files import.
    static func imports(under path: String) throws -> Set<String> {
        let folder = root.appendingPathComponent(path)
        var found: Set<String> = []
        let files = FileManager.default.enumerator(atPath: folder.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        for file in files {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") where line.hasPrefix("import ") {
                found.insert(String(line.dropFirst("import ".count)).trimmingCharacters(in: .whitespaces))
            }
        }
        return found
    }

    @Test func theVocabularyHasNoNetworkingAndTheEngineNoClient() throws {
        let graph = try Self.targets()
        #expect(graph.count > 20, "Package.swift's targets were not found: \(graph.keys.sorted())")
        #expect(Self.closure(of: "SpeedyCore", in: graph) == ["CSpeedy", "NIOCore"])
        let network: Set = ["AsyncHTTPClient", "NIOSSL", "NIOHTTP1", "Hummingbird", "SpeedyClients", "PostgresNIO", "SpeedyPostgres"]
        for module in ["SpeedyCore", "ChunkStorage", "ConsoleModel", "CommandLineSupport"] {
            let reached = Self.closure(of: module, in: graph).intersection(network)
            #expect(reached.isEmpty, "\(module) reaches \(reached.sorted())")
        }
        #expect(try Self.imports(under: "Sources/Servers/SpeedyCore").isSubset(of: ["CSpeedy", "NIOCore", "Foundation", "FoundationEssentials", "Glibc", "Musl", "Synchronization"]))
    }

    @Test func onlyTheMasterAndTheMetaserverLinkPostgreSQL() throws {
        let graph = try Self.targets()
        for module in ["ChunkServer", "ImageServer", "PeerAgent", "Tracker", "ServerSupport", "GarbageCollection", "ToolSupport", "ChunkTool", "Transfer", "SpeedyConsole"] {
            let reached = Self.closure(of: module, in: graph).intersection(["PostgresNIO", "SpeedyPostgres"])
            #expect(reached.isEmpty, "\(module) reaches \(reached.sorted())")
        }
        for module in ["ChunkMaster", "MetaServer"] {
            #expect(Self.closure(of: module, in: graph).contains("SpeedyPostgres"))
        }
        for folder in ["Sources/Servers/ChunkServer", "Sources/Servers/ImageServer", "Sources/Servers/PeerAgent", "Sources/Servers/Tracker", "Sources/Servers/ServerSupport", "Sources/Tools"] {
            #expect(try Self.imports(under: folder).isDisjoint(with: ["PostgresNIO", "SpeedyPostgres"]), "\(folder) imports PostgreSQL")
        }
    }

    @Test func clientsKnowNoServerAndTheSpeedyCommandNoToolOptions() throws {
        let graph = try Self.targets()
        let clients = Self.closure(of: "SpeedyClients", in: graph)
        #expect(clients.isDisjoint(with: ["Hummingbird", "ServerSupport", "ArgumentParser"]), "SpeedyClients reaches \(clients.sorted())")
        #expect(!(graph["SpeedyCommand"] ?? []).contains("ToolSupport"))
        #expect(try !Self.imports(under: "Sources/Servers/SpeedyCommand").contains("ToolSupport"))
    }

    /// The node agent runs on client hosts: it speaks to the registry and the chunkservers over
    /// HTTP through the clients, and links no other role, no storage engine and no database.
    @Test func theAgentKnowsTheClusterOnlyThroughItsHTTPAPIs() throws {
        let graph = try Self.targets()
        let reached = Self.closure(of: "PeerAgent", in: graph)
        #expect(reached.contains("SpeedyClients"))
        let roles: Set = ["ChunkServer", "ChunkMaster", "MetaServer", "ImageServer", "ChunkStorage", "GarbageCollection", "SpeedyPostgres"]
        #expect(reached.isDisjoint(with: roles), "PeerAgent reaches \(reached.intersection(roles).sorted())")
        #expect(try Self.imports(under: "Sources/Servers/PeerAgent").isDisjoint(with: roles))
    }

    /// The tracker any host may run holds no cluster data: it links no other role (the agent
    /// included: they share only the wire types), no storage engine and no database.
    @Test func theTrackerLinksNoOtherRole() throws {
        let graph = try Self.targets()
        let reached = Self.closure(of: "Tracker", in: graph)
        let roles: Set = ["ChunkServer", "ChunkMaster", "MetaServer", "ImageServer", "PeerAgent", "ChunkStorage", "GarbageCollection", "SpeedyPostgres"]
        #expect(reached.contains("ServerSupport"))
        #expect(reached.isDisjoint(with: roles), "Tracker reaches \(reached.intersection(roles).sorted())")
        #expect(try Self.imports(under: "Sources/Servers/Tracker").isDisjoint(with: roles))
    }
}

import ArgumentParser
import Foundation
import NIOCore
import SpeedyCore

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a group's replicas and read every chunk to check its CRC.",
        discussion: """
            Lists the chunks of every member of the group, compares the listings, then reads every \
            chunk on every member (the chunkserver checks its CRC). A chunk a member lacks while most \
            members have it is missing there; one only a minority of members have is extra there; \
            one whose read fails its CRC is corrupt. Exit status 0 when all replicas agree and read \
            clean, 1 when problems were found, 2 when the check could not run.
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "The group to verify.")
    var group: UInt32

    @Option(help: "Read at most this many MB/s per member (0: no limit), to spare a live cluster.")
    var rate: Double = 0

    @Flag(help: "Compare listings only; do not read the chunks.")
    var listingsOnly = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() async throws {
        let target = try await options.group(group)
        let progress = Progress(enabled: !json && isatty(STDERR_FILENO) == 1)
        let report = try await GroupVerifier(group: target, rateBytesPerSecond: rate * 1_000_000, readChunks: !listingsOnly, progress: progress).run()
        progress.finish()
        if json {
            print(String(decoding: try WireJSON.encoder(pretty: true).encode(report), as: UTF8.self))
        } else {
            print(report.text)
        }
        if !report.clean { throw ExitCode(1) }
    }
}

/// What `chunktool verify` found, per member and in total.
struct VerifyReport: Codable {
    struct Member: Codable {
        var id: String
        var addr: String
        var reachable: Bool
        var chunks: Int
        var missing: [UInt64]
        var extra: [UInt64]
        var corrupt: [UInt64]
        var bytesRead: UInt64
    }

    var group: UInt32
    var members: [Member]
    var chunksChecked: Int
    var missing: Int { members.reduce(0) { $0 + $1.missing.count } }
    var extra: Int { members.reduce(0) { $0 + $1.extra.count } }
    var corrupt: Int { members.reduce(0) { $0 + $1.corrupt.count } }
    var clean: Bool { members.allSatisfy { $0.reachable } && missing == 0 && extra == 0 && corrupt == 0 }

    enum CodingKeys: String, CodingKey { case group, members, chunksChecked, missing, extra, corrupt, clean }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(group, forKey: .group)
        try c.encode(members, forKey: .members)
        try c.encode(chunksChecked, forKey: .chunksChecked)
        try c.encode(missing, forKey: .missing)
        try c.encode(extra, forKey: .extra)
        try c.encode(corrupt, forKey: .corrupt)
        try c.encode(clean, forKey: .clean)
    }

    init(group: UInt32, members: [Member], chunksChecked: Int) {
        self.group = group
        self.members = members
        self.chunksChecked = chunksChecked
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        group = try c.decode(UInt32.self, forKey: .group)
        members = try c.decode([Member].self, forKey: .members)
        chunksChecked = try c.decode(Int.self, forKey: .chunksChecked)
    }

    var text: String {
        var lines = ["group \(group): \(chunksChecked) chunks, \(missing) missing, \(extra) extra, \(corrupt) corrupt" + (clean ? " - clean" : "")]
        for m in members {
            guard m.reachable else {
                lines.append("  \(m.id) \(m.addr): unreachable, not verified")
                continue
            }
            var line = "  \(m.id) \(m.addr): \(m.chunks) chunks"
            if !m.missing.isEmpty { line += ", missing \(Self.list(m.missing))" }
            if !m.extra.isEmpty { line += ", extra \(Self.list(m.extra))" }
            if !m.corrupt.isEmpty { line += ", corrupt \(Self.list(m.corrupt))" }
            if m.missing.isEmpty && m.extra.isEmpty && m.corrupt.isEmpty { line += ", ok" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    static func list(_ ids: [UInt64]) -> String {
        let shown = ids.prefix(10).map(String.init).joined(separator: " ")
        return ids.count > 10 ? "\(ids.count) (\(shown) …)" : shown
    }
}

/// Lists and reads every replica of a group.
struct GroupVerifier {
    let group: GroupSnapshot
    let rateBytesPerSecond: Double
    let readChunks: Bool
    let progress: Progress

    func run() async throws -> VerifyReport {
        var listings: [String: [UInt64: ChunkInfo]] = [:]
        var members: [VerifyReport.Member] = []
        for member in group.members {
            let client = ChunkServerClient(baseURL: member.addr)
            var chunks: [UInt64: ChunkInfo] = [:]
            var after: UInt64 = 0
            var reachable = true
            do {
                while true {
                    let page = try await client.list(group: group.id, after: after, limit: 5000)
                    for info in page.chunks { chunks[info.fileId] = info }
                    guard let next = page.nextAfter else { break }
                    after = next
                }
            } catch {
                reachable = false
            }
            if reachable { listings[member.id] = chunks }
            members.append(.init(id: member.id, addr: member.addr, reachable: reachable, chunks: chunks.count, missing: [], extra: [], corrupt: [], bytesRead: 0))
        }
        // Majority rule over the reachable members.
        let reachable = members.filter(\.reachable).count
        var holders: [UInt64: Int] = [:]
        for listing in listings.values { for id in listing.keys { holders[id, default: 0] += 1 } }
        for i in members.indices where members[i].reachable {
            let own = listings[members[i].id]!
            for (id, count) in holders.sorted(by: { $0.key < $1.key }) {
                let majority = count * 2 > reachable
                if majority && own[id] == nil { members[i].missing.append(id) }
                if !majority && own[id] != nil { members[i].extra.append(id) }
            }
        }
        if readChunks {
            let total = listings.values.reduce(0) { $0 + $1.count }
            var done = 0
            for i in members.indices where members[i].reachable {
                let client = ChunkServerClient(baseURL: members[i].addr)
                let started = Date()
                for (id, info) in listings[members[i].id]!.sorted(by: { $0.key < $1.key }) {
                    do {
                        let data = try await client.get(ChunkKey(group: group.id, fileId: id))
                        if data.readableBytes != Int(info.length) || CRC32C.checksum(data) != info.crc { members[i].corrupt.append(id) }
                    } catch {
                        members[i].corrupt.append(id)
                    }
                    members[i].bytesRead += UInt64(info.length)
                    done += 1
                    progress.update(done: done, total: total, bytes: members[i].bytesRead, since: started)
                    if rateBytesPerSecond > 0 {
                        let ahead = Double(members[i].bytesRead) / rateBytesPerSecond - Date().timeIntervalSince(started)
                        if ahead > 0 { try await Task.sleep(for: .milliseconds(Int64(ahead * 1000))) }
                    }
                }
            }
        }
        return VerifyReport(group: group.id, members: members, chunksChecked: holders.count)
    }
}

/// A one-line progress bar on standard error, when it is a terminal.
final class Progress: @unchecked Sendable {
    let enabled: Bool
    init(enabled: Bool) { self.enabled = enabled }

    func update(done: Int, total: Int, bytes: UInt64, since: Date) {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = width * done / total
        let seconds = max(0.001, Date().timeIntervalSince(since))
        let line = "\r[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] \(done)/\(total) chunks  "
            + ByteSize.format(Double(bytes) / seconds) + "/s "
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

import CommandLineSupport
import ArgumentParser
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import ToolSupport

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare a group's replicas and read every chunk to check its CRC.",
        discussion: """
            Lists the chunks of every member of the group, compares the listings, then reads every \
            chunk on every member (the chunkserver checks its CRC). A chunk a member lacks while most \
            members have it is missing there; one only a minority of members have is extra there; \
            one whose read fails its CRC is corrupt. Name the group (--group), one server (--server: \
            its listing is compared with its group's, and only its chunks are read) or --all groups. \
            --quick reads nothing and lists only what differs: the members compare the count and hash \
            of their chunks range by range, narrowing down to the ranges where they disagree, so \
            identical members cost one request each; it also reports a chunk held under different \
            CRCs, and how many requests it took. Of two members, a chunk only one has is missing on \
            the other. Exit status 0 when all replicas agree and read clean, 1 when problems were found, 2 when \
            the check could not run.
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "The group to verify.")
    var group: UInt32?

    @Option(help: "Verify only this server (by id) against the rest of its group.")
    var server: String?

    @Flag(help: "Verify every group.")
    var all = false

    @Option(help: "Read at most this many MB/s per member (0: no limit), to spare a live cluster.")
    var rate: Double = 0

    @Flag(help: "Compare listings only; do not read the chunks.")
    var listingsOnly = false

    @Flag(help: "Compare the members range by range and list only where they differ; read nothing.")
    var quick = false

    @Flag(help: "Print the report as JSON.")
    var json = false

    func validate() throws {
        guard [group != nil, server != nil, all].count(where: { $0 }) == 1 else {
            throw ValidationError("name exactly one of --group G, --server ID or --all")
        }
        guard rate >= 0 else { throw ValidationError("--rate must not be negative") }
        guard !quick || rate == 0 else { throw ValidationError("--rate does not apply to --quick, which reads nothing") }
    }

    struct AllReport: Codable {
        var groups: [VerifyReport]
        var clean: Bool
    }

    func run() async throws {
        let snapshot = try await options.snapshot()
        var targets: [(GroupSnapshot, String?)] = []
        if let group {
            guard let found = snapshot.groups.first(where: { $0.id == group }) else {
                throw couldNotRun("group \(group) is not known to the master at \(options.url)")
            }
            targets = [(found, nil)]
        } else if let server {
            guard let found = snapshot.groups.first(where: { $0.members.contains { $0.id == server } }) else {
                throw couldNotRun("server \(server) is not known to the master at \(options.url)")
            }
            targets = [(found, server)]
        } else {
            targets = snapshot.groups.map { ($0, nil) }
        }
        let what = group.map { "group \($0)" } ?? server.map { "server \($0)" } ?? "all groups"
        let job = JobReporter(kind: "verify", target: what, client: options.client)
        let progress = ProgressBar(enabled: !json, job: job)
        var reports: [VerifyReport] = []
        try await job.endingOnFailure {
            for (target, only) in targets {
                reports.append(try await GroupVerifier(group: target, only: only, megabytesPerSecond: rate, readChunks: !listingsOnly, quick: quick, progress: progress, transport: options.transport).run())
            }
        }
        progress.finish()
        let missing = reports.reduce(0) { $0 + $1.missing }, corrupt = reports.reduce(0) { $0 + $1.corrupt }
        await job.end(
            .finished,
            message: reports.allSatisfy(\.clean) ? "clean" : "\(missing) missing, \(corrupt) corrupt, \(reports.reduce(0) { $0 + $1.extra }) extra (or a member unreachable)")
        if json {
            if all { try printJSON(AllReport(groups: reports, clean: reports.allSatisfy(\.clean))) } else { try printJSON(reports[0]) }
        } else {
            if reports.isEmpty { print("no groups") }
            print(reports.map(\.text).joined(separator: "\n"))
        }
        if !reports.allSatisfy(\.clean) { throw ToolExit.problems }
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
        /// With --quick: chunks this member holds under another CRC than most members do.
        var crcDiffers: [UInt64]? = nil
    }

    var group: UInt32
    var members: [Member]
    var chunksChecked: Int
    /// With --quick: the HTTP requests the comparison took.
    var requests: Int? = nil
    var missing: Int { members.reduce(0) { $0 + $1.missing.count } }
    var extra: Int { members.reduce(0) { $0 + $1.extra.count } }
    var corrupt: Int { members.reduce(0) { $0 + $1.corrupt.count } }
    var clean: Bool {
        members.allSatisfy { $0.reachable && ($0.crcDiffers ?? []).isEmpty } && missing == 0 && extra == 0 && corrupt == 0
    }

    enum CodingKeys: String, CodingKey { case group, members, chunksChecked, missing, extra, corrupt, clean, requests }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(group, forKey: .group)
        try c.encode(members, forKey: .members)
        try c.encode(chunksChecked, forKey: .chunksChecked)
        try c.encode(missing, forKey: .missing)
        try c.encode(extra, forKey: .extra)
        try c.encode(corrupt, forKey: .corrupt)
        try c.encode(clean, forKey: .clean)
        try c.encodeIfPresent(requests, forKey: .requests)
    }

    init(group: UInt32, members: [Member], chunksChecked: Int, requests: Int? = nil) {
        self.group = group
        self.members = members
        self.chunksChecked = chunksChecked
        self.requests = requests
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        group = try c.decode(UInt32.self, forKey: .group)
        members = try c.decode([Member].self, forKey: .members)
        chunksChecked = try c.decode(Int.self, forKey: .chunksChecked)
        requests = try c.decodeIfPresent(Int.self, forKey: .requests)
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
            let crcDiffers = m.crcDiffers ?? []
            if !crcDiffers.isEmpty { line += ", CRC differs \(Self.list(crcDiffers))" }
            if m.missing.isEmpty && m.extra.isEmpty && m.corrupt.isEmpty && crcDiffers.isEmpty { line += ", ok" }
            lines.append(line)
        }
        if let requests { lines.append("  compared range by range in \(requests) requests; no chunk read") }
        return lines.joined(separator: "\n")
    }

    static func list(_ ids: [UInt64]) -> String {
        let shown = ids.prefix(10).map(String.init).joined(separator: " ")
        return ids.count > 10 ? "\(ids.count) (\(shown) …)" : shown
    }
}

/// Lists and reads every replica of a group (or one member of it).
struct GroupVerifier {
    let group: GroupSnapshot
    /// When set, only this member is read and reported; the others still vote on the listing.
    var only: String? = nil
    let megabytesPerSecond: Double
    let readChunks: Bool
    /// Compare by range digests (``ReplicaComparison``) rather than whole listings; read nothing.
    var quick = false
    let progress: ProgressBar
    /// How the members are called.
    let transport: ClusterTransport

    /// How long to wait before listing again to confirm a difference: on a live cluster a chunk
    /// being written or deleted right now differs between members for a moment.
    var recheckAfter: Duration = .seconds(1)

    private func listAll() async -> [String: [UInt64: ChunkInfo]] {
        var listings: [String: [UInt64: ChunkInfo]] = [:]
        for member in group.members {
            if let chunks = try? await ChunkServerClient(baseURL: member.addr, transport: transport).listAll(group: group.id) { listings[member.id] = chunks }
        }
        return listings
    }

    /// Missing and extra chunks per member by majority over the members listed.
    private static func compare(_ listings: [String: [UInt64: ChunkInfo]]) -> [String: (missing: Set<UInt64>, extra: Set<UInt64>)] {
        var holders: [UInt64: Int] = [:]
        for listing in listings.values { for id in listing.keys { holders[id, default: 0] += 1 } }
        var result: [String: (missing: Set<UInt64>, extra: Set<UInt64>)] = [:]
        for (member, own) in listings {
            var entry: (missing: Set<UInt64>, extra: Set<UInt64>) = ([], [])
            for (id, count) in holders {
                let majority = count * 2 > listings.count
                if majority && own[id] == nil { entry.missing.insert(id) }
                if !majority && own[id] != nil { entry.extra.insert(id) }
            }
            result[member] = entry
        }
        return result
    }

    /// Compares the members by range digests: only the ranges where they differ are listed.
    private func runQuick() async throws -> VerifyReport {
        let members = group.members.map { ReplicaComparison.Member(id: $0.id, client: ChunkServerClient(baseURL: $0.addr, transport: transport)) }
        let found = try await ReplicaComparison(group: group.id, members: members, confirmAfter: recheckAfter).run()
        let byId = Dictionary(found.members.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var reported: [VerifyReport.Member] = group.members.map { member in
            let diff = byId[member.id]
            return .init(
                id: member.id, addr: member.addr, reachable: diff != nil, chunks: Int(diff?.chunks ?? 0), missing: diff?.missing ?? [],
                extra: diff?.extra ?? [], corrupt: [], bytesRead: 0, crcDiffers: diff?.crcDiffers ?? [])
        }
        if let only { reported = reported.filter { $0.id == only } }
        return VerifyReport(group: group.id, members: reported, chunksChecked: Int(found.chunks), requests: found.requests)
    }

    func run() async throws -> VerifyReport {
        if quick { return try await runQuick() }
        let listings = await listAll()
        var differences = Self.compare(listings)
        if differences.values.contains(where: { !$0.missing.isEmpty || !$0.extra.isEmpty }) {
            // Only what is still different a moment later counts.
            try await Task.sleep(for: recheckAfter)
            let again = Self.compare(await listAll())
            for (member, first) in differences {
                let second = again[member] ?? first
                differences[member] = (first.missing.intersection(second.missing), first.extra.intersection(second.extra))
            }
        }
        var members: [VerifyReport.Member] = group.members.map { member in
            let diff = differences[member.id]
            return .init(
                id: member.id, addr: member.addr, reachable: listings[member.id] != nil, chunks: listings[member.id]?.count ?? 0,
                missing: diff?.missing.sorted() ?? [], extra: diff?.extra.sorted() ?? [], corrupt: [], bytesRead: 0)
        }
        let chunksChecked = listings.values.reduce(into: Set<UInt64>()) { $0.formUnion($1.keys) }.count
        if let only { members = members.filter { $0.id == only } }
        if readChunks {
            let total = members.filter(\.reachable).reduce(0) { $0 + listings[$1.id]!.count }
            var done = 0
            var bytes: UInt64 = 0
            for i in members.indices where members[i].reachable {
                let client = ChunkServerClient(baseURL: members[i].addr, transport: transport)
                let limiter = RateLimiter(megabytesPerSecond: megabytesPerSecond)
                for (id, info) in listings[members[i].id]!.sorted(by: { $0.key < $1.key }) {
                    do {
                        let data = try await client.get(ChunkKey(group: group.id, fileId: id))
                        if data.readableBytes != Int(info.length) || CRC32C.checksum(data) != info.crc { members[i].corrupt.append(id) }
                    } catch let error where error.httpStatus == 404 {
                        // Deleted since it was listed (garbage of a failed write): nothing to check.
                    } catch {
                        members[i].corrupt.append(id)
                    }
                    members[i].bytesRead += UInt64(info.length)
                    bytes += UInt64(info.length)
                    done += 1
                    progress.update(done: done, total: total, bytes: bytes)
                    try await limiter.wait(after: members[i].bytesRead)
                }
            }
        }
        return VerifyReport(group: group.id, members: members, chunksChecked: chunksChecked)
    }
}

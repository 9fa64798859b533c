import CommandLineSupport
import ArgumentParser
import Foundation
import NIOCore
import SpeedyClients
import SpeedyCore
import ToolSupport

struct Fsck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cross-check the metaserver against the chunkservers: lost data and garbage.",
        discussion: """
            For every chunk a blob (or an upload in progress) refers to, looks for a readable member \
            of its group whose listing has it with the recorded length and CRC; with --deep it also \
            reads the chunk until one copy passes its CRC, then recomputes every blob's SHA-256 from \
            its chunks (a blob whose bytes do not have its digest is reported as a DIGEST MISMATCH). \
            A blob with a chunk that has no good copy \
            anywhere is LOST: reported loudly, exit status 1. Chunks no blob or upload refers to are \
            reported as garbage candidates: confirm with a second fsck later before deleting \
            anything, since a chunk of an upload still streaming is recorded only after its write \
            is acknowledged. Chunks missing from only some members are counted \
            as under-replicated (chunktool repair fixes them). Exit status 0 when nothing is lost, \
            1 when data is lost, 2 when fsck could not run (a readable member that cannot be listed \
            included).
            """
    )

    @OptionGroup var options: MasterOptions

    @Option(help: "Base URL of the metaserver (default: $SPEEDY_META, else http://127.0.0.1:8100).")
    var meta: String?

    @Flag(help: "Read every referenced chunk (until one copy verifies), not just the listings.")
    var deep = false

    @Option(help: "With --deep, read at most this many MB/s (0: no limit).")
    var rate: Double = 0

    @Flag(help: "Print the report as JSON.")
    var json = false

    struct LostChunk: Codable {
        var group: UInt32
        var fileId: UInt64
        var owner: String
        var why: String
    }

    struct GroupResult: Codable {
        var group: UInt32
        var referenced: Int
        var stored: Int
        var underReplicated: Int
        var lost: Int
        var garbage: [UInt64]
    }

    struct Report: Codable {
        var groups: [GroupResult]
        var lostChunks: [LostChunk]
        /// Blob digests (or `upload:<id>`) with at least one lost chunk.
        var lostBlobs: [String]
        var garbageChunks: Int
        /// With --deep: blobs whose SHA-256 was recomputed, and those that do not match.
        var blobsHashed: Int?
        var digestMismatches: [BlobDigestCheck.Mismatch]
        var clean: Bool
    }

    /// Every chunk reference of `group`, all pages.
    func references(in group: UInt32, from store: MetaClient) async throws -> [ChunkReference] {
        var references: [ChunkReference] = []
        var after: UInt64 = 0
        do {
            while true {
                let page = try await store.chunkReferences(group: group, after: after, limit: 5000)
                references += page.references
                guard let next = page.nextAfter else { return references }
                after = next
            }
        } catch {
            throw couldNotRun("cannot read group \(group)'s chunk references from the metaserver: \(error)")
        }
    }

    var metaURL: String {
        MasterLocation.normalize(meta ?? ProcessInfo.processInfo.environment["SPEEDY_META"] ?? "http://127.0.0.1:8100", scheme: options.transport.scheme)
    }

    func run() async throws {
        let job = JobReporter(kind: "fsck", target: "every group" + (deep ? " (deep)" : ""), client: options.client)
        try await job.endingOnFailure { try await check(job) }
    }

    /// What a scan has found so far, and the bytes it has read (for the rate limit).
    private struct Scan {
        var results: [GroupResult] = []
        var lost: [LostChunk] = []
        var bytesRead: UInt64 = 0
    }

    /// What one scan reads from and reports to.
    private struct ScanContext {
        let snapshot: ClusterSnapshot
        let store: MetaClient
        let transport: ClusterTransport
        let progress: ProgressBar
        let limiter: RateLimiter
    }

    private func check(_ job: JobReporter) async throws {
        let snapshot = try await options.snapshot()
        let transport = options.transport
        let store = MetaClient(baseURL: metaURL, transport: transport)
        let referencedGroups: [UInt32]
        do {
            referencedGroups = try await store.referencedGroups()
        } catch {
            throw couldNotRun("cannot ask the metaserver at \(metaURL): \(error)")
        }
        let context = ScanContext(
            snapshot: snapshot, store: store, transport: transport, progress: ProgressBar(enabled: !json, job: job),
            limiter: RateLimiter(megabytesPerSecond: rate))
        var scan = Scan()
        for id in Set(referencedGroups).union(snapshot.groups.map(\.id)).sorted() {
            try await checkGroup(id, context, &scan)
        }
        var hashed: Int?
        var mismatches: [BlobDigestCheck.Mismatch] = []
        if deep {
            let bytesRead = scan.bytesRead
            (hashed, mismatches) = try await BlobDigestCheck(store: store, snapshot: snapshot).run { done, bytes in
                context.progress.update(done: done, total: done, bytes: bytesRead + bytes, label: "blob digests")
                try await context.limiter.wait(after: bytesRead + bytes)
            }
        }
        context.progress.finish()
        let lostBlobs = Array(Set(scan.lost.map(\.owner))).sorted()
        let report = Report(
            groups: scan.results, lostChunks: scan.lost, lostBlobs: lostBlobs, garbageChunks: scan.results.reduce(0) { $0 + $1.garbage.count },
            blobsHashed: hashed, digestMismatches: mismatches, clean: scan.lost.isEmpty && mismatches.isEmpty)
        await job.end(
            .finished,
            message: (scan.lost.isEmpty ? "no data lost" : "DATA LOSS: \(lostBlobs.count) blob(s)") + ", \(report.garbageChunks) garbage chunks")
        try output(report)
    }

    /// Checks one group's references against its readable members' listings (and, with --deep,
    /// reads every referenced chunk until one copy passes its CRC).
    ///
    /// References are read before and after the listings: a chunk counts as lost only if it was
    /// referenced before it was listed missing and still is after (an upload cancelled meanwhile
    /// is no loss); as garbage only if referenced in neither (a chunk written and recorded during
    /// the scan is no garbage).
    private func checkGroup(_ id: UInt32, _ context: ScanContext, _ scan: inout Scan) async throws {
        let before = try await references(in: id, from: context.store)
        let readable = context.snapshot.groups.first { $0.id == id }?.members.filter(\.status.isReadable) ?? []
        let listings = try await list(group: id, on: readable, transport: context.transport)
        let after = try await references(in: id, from: context.store)
        // By chunk, not owner: an upload that completes meanwhile hands its chunks to a blob.
        let stillReferenced = Set(after.map { "\($0.fileId) \($0.crc) \($0.length)" })
        let references = before.filter { stillReferenced.contains("\($0.fileId) \($0.crc) \($0.length)") }
        var result = GroupResult(group: id, referenced: references.count, stored: 0, underReplicated: 0, lost: 0, garbage: [])
        for (n, reference) in references.enumerated() {
            let holders = listings.filter { $0.chunks[reference.fileId].map { $0.crc == reference.crc && $0.length == reference.length } ?? false }
            if holders.count < max(1, readable.count) { result.underReplicated += 1 }
            var why: String? = holders.isEmpty ? (listings.isEmpty ? "no member of group \(id) is readable" : "no member holds it with its recorded CRC") : nil
            if why == nil, deep {
                why = await readFails(reference, group: id, holders: holders.map(\.addr), context.transport, bytesRead: &scan.bytesRead)
                try await context.limiter.wait(after: scan.bytesRead)
            }
            // A request that failed deletes the chunks it held, and a moved chunk's blob names
            // its copy: missing, they are no loss.
            if let why, !reference.owner.hasPrefix("held:"), !reference.owner.hasPrefix("moved:") {
                result.lost += 1
                scan.lost.append(LostChunk(group: id, fileId: reference.fileId, owner: reference.owner, why: why))
            }
            context.progress.update(done: n + 1, total: references.count, bytes: scan.bytesRead, label: "group \(id) chunks")
        }
        let stored = listings.reduce(into: Set<UInt64>()) { $0.formUnion($1.chunks.keys) }
        result.stored = stored.count
        result.garbage = stored.subtracting(Set((before + after).map(\.fileId))).sorted()
        scan.results.append(result)
    }

    /// Every listed chunk of `group` on each of `members`, or exit status 2 naming the one that failed.
    private func list(group id: UInt32, on members: [MemberSnapshot], transport: ClusterTransport) async throws -> [(addr: String, chunks: [UInt64: ChunkInfo])] {
        var listings: [(addr: String, chunks: [UInt64: ChunkInfo])] = []
        for member in members {
            do {
                listings.append((member.addr, try await ChunkServerClient(baseURL: member.addr, transport: transport).listAll(group: id)))
            } catch {
                throw couldNotRun("cannot list group \(id)'s chunks on \(member.id) at \(member.addr): \(options.reason(error))")
            }
        }
        return listings
    }

    /// Nil when one holder's copy of the chunk passes its CRC and length, else why it is lost.
    private func readFails(
        _ reference: ChunkReference, group id: UInt32, holders: [String], _ transport: ClusterTransport, bytesRead: inout UInt64
    ) async -> String? {
        for addr in holders {
            let key = ChunkKey(group: id, fileId: reference.fileId)
            guard let (data, crc) = try? await ChunkServerClient(baseURL: addr, transport: transport).getChecked(key) else { continue }
            bytesRead += UInt64(data.readableBytes)
            if crc == reference.crc, data.readableBytes == Int(reference.length) { return nil }
        }
        return "every copy fails its CRC"
    }

    /// Prints the report (JSON or text), lost blobs and digest mismatches on standard error, and
    /// exits 1 when data is lost or a digest does not match.
    private func output(_ report: Report) throws {
        if json {
            try printJSON(report)
        } else {
            for r in report.groups {
                print("group \(r.group): \(r.referenced) chunks referenced, \(r.stored) stored, \(r.underReplicated) under-replicated, \(r.lost) lost, \(r.garbage.count) garbage" + (r.garbage.isEmpty ? "" : " (\(VerifyReport.list(r.garbage)))"))
            }
            if report.groups.isEmpty { print("no groups and no blobs") }
            print(report.lostChunks.isEmpty ? "no data lost" : "DATA LOSS: \(report.lostBlobs.count) blob(s) have chunks with no good copy anywhere")
            if let hashed = report.blobsHashed {
                print(report.digestMismatches.isEmpty ? "\(hashed) blob digest(s) recomputed: all match" : "DIGEST MISMATCH: \(report.digestMismatches.count) of \(hashed) blob(s)")
            }
        }
        for mismatch in report.digestMismatches {
            FileHandle.standardError.write(Data("DIGEST MISMATCH: \(mismatch.digest): \(mismatch.why)\n".utf8))
        }
        for blob in report.lostBlobs {
            let chunks = report.lostChunks.filter { $0.owner == blob }
            FileHandle.standardError.write(Data("LOST: \(blob): \(chunks.map { "chunk \($0.group)/\($0.fileId) (\($0.why))" }.joined(separator: ", "))\n".utf8))
        }
        if !report.clean { throw ToolExit.problems }
    }
}

import SpeedyCore

/// Compares what the members of a group hold without listing every chunk: each member is asked
/// for the count and hash of its chunks in parts of the file id space
/// (``ChunkServerClient/digests(group:from:to:parts:)``), and only parts where members disagree are
/// cut further, until a part holds at most ``leafChunks`` chunks on every member; only those parts
/// are listed. Identical members cost one request each; each difference costs about one request
/// per member per level of the descent, however many chunks agree.
///
/// Used by `chunktool verify --quick` and by the master to find what a member lacks.
public struct ReplicaComparison: Sendable {
    /// A member to compare: its id and a client for it.
    public struct Member: Sendable {
        /// The chunkserver's id.
        public var id: String
        /// Calls the chunkserver.
        public var client: ChunkServerClient

        /// Creates a member.
        public init(id: String, client: ChunkServerClient) {
            self.id = id
            self.client = client
        }
    }

    /// What one member holds that the others do not agree with.
    public struct Differences: Sendable, Equatable {
        /// The member's id.
        public var id: String
        /// Chunks the member held when first asked.
        public var chunks: UInt64
        /// File ids a strict majority of the members hold (of two members: the other) and this
        /// one does not, ascending.
        public var missing: [UInt64] = []
        /// File ids this member holds with only a minority of the members, ascending.
        public var extra: [UInt64] = []
        /// File ids this member holds under another CRC than most holders have (every holder's,
        /// when no CRC has a majority), ascending.
        public var crcDiffers: [UInt64] = []

        /// Creates a member's differences.
        public init(id: String, chunks: UInt64, missing: [UInt64] = [], extra: [UInt64] = [], crcDiffers: [UInt64] = []) {
            self.id = id
            self.chunks = chunks
            self.missing = missing
            self.extra = extra
            self.crcDiffers = crcDiffers
        }

        /// Whether the member agrees with the others.
        public var clean: Bool { missing.isEmpty && extra.isEmpty && crcDiffers.isEmpty }
    }

    /// What a comparison found.
    public struct Report: Sendable, Equatable {
        /// Each member compared, in the order given.
        public var members: [Differences]
        /// Members left out, by id, with why: each failed a request, and the comparison ran again
        /// among the others.
        public var unreachable: [String: String]
        /// Distinct chunks the members hold between them.
        public var chunks: UInt64
        /// HTTP requests made, those of abandoned attempts included: one per member when all agree.
        public var requests: Int
        /// Rounds of digest requests: the depth of the descent.
        public var rounds: Int

        /// Whether every member was compared and all agree.
        public var clean: Bool { unreachable.isEmpty && members.allSatisfy(\.clean) }
    }

    /// The group compared.
    public let group: UInt32
    /// The members compared.
    public let members: [Member]
    /// Chunks younger than this on any member holding them are left out of the comparison:
    /// chunks in flight on a replication chain are briefly on some members only.
    public var minAgeMs: Int64?
    /// When set, ranges that differ are listed again after this long and only what differs both
    /// times is reported (a write or a delete under way differs for a moment).
    public var confirmAfter: Duration?
    /// Parts a range is cut into per digest request where its ids are dense (2 to 256).
    public var parts = 16
    /// A range is listed rather than cut further once no member holds more than this many chunks in it.
    public var leafChunks: UInt64 = 256
    /// Requests in flight at once.
    public var concurrency = 8

    /// Parts a sparse range is cut into: the most a chunkserver answers.
    static let sparseParts = 256

    /// Creates a comparison of `members` of `group`.
    public init(group: UInt32, members: [Member], minAgeMs: Int64? = nil, confirmAfter: Duration? = nil) {
        self.group = group
        self.members = members
        self.minAgeMs = minAgeMs
        self.confirmAfter = confirmAfter
    }

    /// Compares the members. A member whose request fails is left out (``Report/unreachable``)
    /// and the comparison starts again among the others.
    public func run() async throws(CancellationError) -> Report {
        var live = members
        var unreachable: [String: String] = [:]
        var requests = 0
        while true {
            do {
                var report = try await attempt(live)
                report.requests += requests
                report.unreachable = unreachable
                return report
            } catch {
                switch error {
                case .cancelled: throw CancellationError()
                case .member(let index, let why, let made):
                    requests += made
                    unreachable[live[index].id] = why
                    live.remove(at: index)
                }
            }
        }
    }

    /// Why an attempt stopped.
    private enum Stop: Error {
        /// Member `index` of those compared failed, after `requests` requests.
        case member(index: Int, why: String, requests: Int)
        case cancelled
    }

    /// One comparison among `live`: the digest rounds, then the listing of the leaf ranges.
    private func attempt(_ live: [Member]) async throws(Stop) -> Report {
        guard !live.isEmpty else { return Report(members: [], unreachable: [:], chunks: 0, requests: 0, rounds: 0) }
        var requests = 0
        let descent = try await descend(live, requests: &requests)
        var found = Found(count: live.count)
        var distinct = descent.agreed
        var differing: [Range<UInt64>] = []
        for (range, held) in try await listLeaves(descent.leaves, live, requests: &requests) {
            let before = found.total
            distinct += compare(held, into: &found)
            if found.total > before { differing.append(range) }
        }
        if let confirmAfter, !differing.isEmpty {
            do { try await Task.sleep(for: confirmAfter) } catch { throw .cancelled }
            let all = Array(live.indices)
            var again = Found(count: live.count)
            for (_, held) in try await listLeaves(differing.map { ($0, all) }, live, requests: &requests) { _ = compare(held, into: &again) }
            found.keep(only: again)
        }
        let members = live.indices.map { i in
            Differences(
                id: live[i].id, chunks: descent.rootCounts[i], missing: found.missing[i].sorted(), extra: found.extra[i].sorted(),
                crcDiffers: found.crcDiffers[i].sorted())
        }
        return Report(members: members, unreachable: [:], chunks: distinct, requests: requests, rounds: descent.rounds)
    }

    /// What the digest rounds found: the ranges to list, with the members holding anything there.
    private struct Descent {
        var leaves: [(range: Range<UInt64>, holders: [Int])] = []
        /// Chunks in the ranges where every member agreed.
        var agreed: UInt64 = 0
        /// Each member's chunks in the whole id space.
        var rootCounts: [UInt64]
        var rounds = 0
    }

    /// Asks every member for the digests of the ranges where they disagree, from the whole id
    /// space down, until each disagreeing range is small enough to list.
    private func descend(_ live: [Member], requests: inout Int) async throws(Stop) -> Descent {
        var descent = Descent(rootCounts: Array(repeating: 0, count: live.count))
        var frontier: [(range: Range<UInt64>, most: UInt64?)] = [(0..<UInt64.max, nil)]
        while !frontier.isEmpty {
            let answers = try await digestRound(frontier, live, requests: &requests)
            if descent.rounds == 0 { descent.rootCounts = answers[0].map { $0.reduce(0) { $0 + $1.count } } }
            descent.rounds += 1
            frontier = []
            for perMember in answers {
                for part in perMember[0].indices {
                    let digests = perMember.map { $0[part] }
                    if digests.allSatisfy({ $0.count == digests[0].count && $0.hash == digests[0].hash }) {
                        descent.agreed += digests[0].count
                        continue
                    }
                    let range = digests[0].from..<digests[0].to
                    let most = digests.map(\.count).max() ?? 0
                    if most <= leafChunks {
                        descent.leaves.append((range, live.indices.filter { digests[$0].count > 0 }))
                    } else {
                        frontier.append((range, most))
                    }
                }
            }
        }
        return descent
    }

    /// How many parts to cut `range` into, given the most chunks a member holds in it (nil: not
    /// known). File ids are handed out upward from 1, so most of the id space is empty: there a
    /// 16-way cut would spend a round on every 4 bits of it, and a 256-way one costs no more requests.
    private func partsFor(_ range: Range<UInt64>, most: UInt64?) -> Int {
        let width = range.upperBound - range.lowerBound
        guard let most else { return Self.sparseParts }
        return width / UInt64(Self.sparseParts) > most ? Self.sparseParts : min(max(parts, 2), Self.sparseParts)
    }

    /// One request per range and member; answers by range, then member, each checked to cut its
    /// range as every other member's does.
    private func digestRound(
        _ frontier: [(range: Range<UInt64>, most: UInt64?)], _ live: [Member], requests: inout Int
    ) async throws(Stop) -> [[[ChunkRangeDigest]]] {
        let n = live.count
        let results = await gather(frontier.count * n) { job -> Result<ChunkRangeDigests, ServiceError> in
            let (range, most) = frontier[job / n]
            do throws(ServiceError) {
                return .success(
                    try await live[job % n].client.digests(
                        group: group, from: range.lowerBound, to: range.upperBound, parts: partsFor(range, most: most)))
            } catch {
                return .failure(error)
            }
        }
        requests += results.count
        if Task.isCancelled { throw .cancelled }
        var answers: [[[ChunkRangeDigest]]] = []
        for (r, entry) in frontier.enumerated() {
            var perMember: [[ChunkRangeDigest]] = []
            for m in 0..<n {
                let ranges: [ChunkRangeDigest]
                switch results[r * n + m] {
                case .success(let answer): ranges = answer.ranges
                case .failure(let error): throw .member(index: m, why: "\(error)", requests: requests)
                }
                guard Self.tiles(ranges, entry.range), perMember.first.map({ Self.sameCut($0, ranges) }) ?? true else {
                    throw .member(index: m, why: "its digests do not cut \(entry.range) as asked", requests: requests)
                }
                perMember.append(ranges)
            }
            answers.append(perMember)
        }
        return answers
    }

    /// Whether `ranges` cover `range` exactly, in order, with no empty part.
    static func tiles(_ ranges: [ChunkRangeDigest], _ range: Range<UInt64>) -> Bool {
        guard let first = ranges.first, let last = ranges.last, first.from == range.lowerBound, last.to == range.upperBound else { return false }
        return ranges.allSatisfy { $0.from < $0.to } && zip(ranges, ranges.dropFirst()).allSatisfy { $0.to == $1.from }
    }

    private static func sameCut(_ a: [ChunkRangeDigest], _ b: [ChunkRangeDigest]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.from == $1.from && $0.to == $1.to }
    }

    /// A chunk as one member listed it.
    struct Held: Sendable {
        var crc: UInt32
        var ageMs: Int64
    }

    /// Lists each range on the members named with it; answers by range: each member's chunks
    /// there (members not named hold none).
    private func listLeaves(
        _ leaves: [(range: Range<UInt64>, holders: [Int])], _ live: [Member], requests: inout Int
    ) async throws(Stop) -> [(Range<UInt64>, [Int: [UInt64: Held]])] {
        let jobs = leaves.enumerated().flatMap { leaf in leaf.element.holders.map { (leaf: leaf.offset, member: $0) } }
        let results = await gather(jobs.count) { job in
            await listRange(live[jobs[job].member].client, leaves[jobs[job].leaf].range)
        }
        requests += results.reduce(0) { $0 + $1.pages }
        if Task.isCancelled { throw .cancelled }
        var listed = leaves.map { ($0.range, [Int: [UInt64: Held]]()) }
        for (job, result) in zip(jobs, results) {
            switch result.chunks {
            case .success(let chunks): listed[job.leaf].1[job.member] = chunks
            case .failure(let error):
                throw .member(index: job.member, why: "\(error)", requests: requests)
            }
        }
        return listed
    }

    /// The chunks one member holds in `range`, by file id, and the listing pages it took.
    private func listRange(_ client: ChunkServerClient, _ range: Range<UInt64>) async -> (chunks: Result<[UInt64: Held], ServiceError>, pages: Int) {
        var held: [UInt64: Held] = [:]
        // `after` is exclusive; file id 0 is never handed out.
        var after = range.lowerBound == 0 ? 0 : range.lowerBound - 1
        var pages = 0
        while true {
            pages += 1
            let page: ChunkListing
            do {
                page = try await client.list(group: group, after: after, limit: Int(min(leafChunks * 2, 10_000)), ages: minAgeMs != nil)
            } catch {
                return (.failure(error), pages)
            }
            // A server that tells no ages makes every chunk look new: nothing of it is judged.
            let ages = page.agesMs ?? []
            for (i, info) in page.chunks.enumerated() {
                guard info.fileId < range.upperBound else { return (.success(held), pages) }
                held[info.fileId] = Held(crc: info.crc, ageMs: i < ages.count ? ages[i] : 0)
            }
            guard let next = page.nextAfter else { return (.success(held), pages) }
            after = next
        }
    }

    /// Differences found so far, per member (by index).
    struct Found {
        var missing: [Set<UInt64>]
        var extra: [Set<UInt64>]
        var crcDiffers: [Set<UInt64>]

        init(count: Int) {
            missing = Array(repeating: [], count: count)
            extra = missing
            crcDiffers = missing
        }

        /// Differences of every kind, over all members.
        var total: Int { [missing, extra, crcDiffers].joined().reduce(0) { $0 + $1.count } }

        /// Keeps only what `other` found too.
        mutating func keep(only other: Found) {
            for i in missing.indices {
                missing[i].formIntersection(other.missing[i])
                extra[i].formIntersection(other.extra[i])
                crcDiffers[i].formIntersection(other.crcDiffers[i])
            }
        }
    }

    /// Judges every file id of one range by majority over all `found`'s members; answers how many
    /// distinct chunks it judged (young ones are left out).
    func compare(_ held: [Int: [UInt64: Held]], into found: inout Found) -> UInt64 {
        let n = found.missing.count
        var judged: UInt64 = 0
        for id in Set(held.values.flatMap(\.keys)) {
            let holders = held.compactMap { member, chunks in chunks[id].map { (member: member, chunk: $0) } }
            if let minAgeMs, holders.contains(where: { $0.chunk.ageMs < minAgeMs }) { continue }
            judged += 1
            let count = holders.count
            if count * 2 > n || (n == 2 && count == 1) {
                for m in 0..<n where held[m]?[id] == nil { found.missing[m].insert(id) }
            } else if count * 2 < n {
                for holder in holders { found.extra[holder.member].insert(id) }
            }
            let crcs = Dictionary(grouping: holders, by: \.chunk.crc)
            guard crcs.count > 1 else { continue }
            let majority = crcs.first { $0.value.count * 2 > count }?.key
            for holder in holders where holder.chunk.crc != majority { found.crcDiffers[holder.member].insert(id) }
        }
        return judged
    }

    /// Runs `work` for jobs 0..<count, at most ``concurrency`` at a time; results in job order.
    private func gather<T: Sendable>(_ count: Int, _ work: @escaping @Sendable (Int) async -> T) async -> [T] {
        await withTaskGroup(of: (Int, T).self) { group in
            var results = [T?](repeating: nil, count: count)
            var next = 0
            while next < min(count, max(1, concurrency)) {
                let job = next
                group.addTask { (job, await work(job)) }
                next += 1
            }
            while let (done, value) = await group.next() {
                results[done] = value
                guard next < count else { continue }
                let job = next
                group.addTask { (job, await work(job)) }
                next += 1
            }
            return results.map { $0! }
        }
    }
}

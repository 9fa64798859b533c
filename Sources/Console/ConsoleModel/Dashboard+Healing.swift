import SpeedyCore

/// What the cluster does to heal itself, as the dashboard shows it: each chunkserver's scrub,
/// the damaged chunks it holds, the chunks no member holds intact (lost) and the spares.
extension Dashboard {
    /// Width of the group table's SCRUB column: `100% never` or `99 damaged`.
    static let scrubColumnWidth = 10

    /// Damaged chunks a server reports now (not yet repaired), as listed in its last heartbeat.
    static func damagedCount(_ m: MemberSnapshot) -> Int { m.scrub?.damaged.count ?? 0 }

    /// The count as shown: the heartbeat lists at most ``ScrubReport/maxDamagedListed``.
    static func damagedLabel(_ count: Int) -> String {
        count >= ScrubReport.maxDamagedListed ? "\(count)+" : String(count)
    }

    /// The SCRUB cell of a server: the current pass's percent (`idle` between passes) and the
    /// age of the last full pass (`never` before the first); `N damaged` instead, in the alert
    /// colour, while it holds damaged chunks; `-` when its heartbeat carries no scrub.
    func scrubCell(_ m: MemberSnapshot, nowMs: Int64) -> Span {
        guard let scrub = m.scrub else { return Span(pad("-", Self.scrubColumnWidth), .dim) }
        let damaged = Self.damagedCount(m)
        if damaged > 0 {
            let label = Self.damagedLabel(damaged)
            return Span(pad(label + (label.count <= 2 ? " damaged" : " dmg"), Self.scrubColumnWidth), .down)
        }
        let text = padLeft(Self.scrubProgress(scrub), 4) + " " + Self.lastPassAge(scrub, nowMs: nowMs)
        return Span(pad(text, Self.scrubColumnWidth), scrub.lastFullPassMs == nil ? .dim : .normal)
    }

    /// `37%` while a pass runs (rounded down: 100% only when done), `idle` between passes.
    static func scrubProgress(_ scrub: ScrubReport) -> String {
        scrub.running ? "\(Int((scrub.fraction * 100).rounded(.down)))%" : "idle"
    }

    /// How long ago the last full pass ended (`2h`), or `never`.
    static func lastPassAge(_ scrub: ScrubReport, nowMs: Int64) -> String {
        guard let last = scrub.lastFullPassMs else { return "never" }
        return age(ms: max(0, nowMs - last))
    }

    /// A compact age: `45s`, `12m`, `5h`, `3d`.
    static func age(ms: Int64) -> String {
        let s = ms / 1000
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m" }
        if s < 86_400 { return "\(s / 3600)h" }
        return "\(s / 86_400)d"
    }

    /// The detail pane's scrub lines, `width` wide: progress, the last full pass's age, and the
    /// pace while a pass runs (passes done between them) when it fits; then the damaged chunks,
    /// now and found since the data directory was made, when there are any. None for a server
    /// whose heartbeat carries no scrub (older than 0.15).
    func scrubDetail(_ m: MemberSnapshot, nowMs: Int64, width: Int) -> [ScreenLine] {
        guard let scrub = m.scrub else { return [] }
        var line = ScreenLine()
        line.add(" scrub   \(Self.scrubProgress(scrub))  ")
        let age = Self.lastPassAge(scrub, nowMs: nowMs)
        line.add(age == "never" ? "full pass never" : "full pass \(age) ago", scrub.lastFullPassMs == nil ? .dim : .normal)
        let more = scrub.running ? "  \(Self.rate(scrub.bytesPerSec))" : "  \(scrub.passes) pass\(scrub.passes == 1 ? "" : "es")"
        if line.text.count + more.count <= width { line.add(more, .dim) }
        var lines = [line]
        let damaged = Self.damagedCount(m)
        if damaged > 0 || scrub.damagedFound > 0 {
            var found = ScreenLine()
            found.add(" damaged ")
            found.add("\(Self.damagedLabel(damaged)) now", damaged > 0 ? .down : .normal)
            found.add("  \(scrub.damagedFound) found", .dim)
            lines.append(found)
        }
        return lines
    }

    /// The GRP and STATE cells of a spare's row, as one: `spare` and its zone.
    func spareCell(_ m: MemberSnapshot, width: Int) -> Span {
        Span(pad("spare" + (m.zone.map { " \($0)" } ?? ""), width), .transferring)
    }

    /// Damaged chunks over every member and spare; shown in the header when non-zero.
    static func damagedTotal(_ snapshot: ClusterSnapshot) -> Int {
        (snapshot.groups.flatMap(\.members) + (snapshot.spares ?? [])).reduce(0) { $0 + damagedCount($1) }
    }

    /// The alert line while chunks are lost (no member holds them intact): how many, in which
    /// groups, and the first blobs that use them, with the digests shortened. Nil when none is.
    func lostLine(_ snapshot: ClusterSnapshot?, width: Int) -> ScreenLine? {
        guard let lost = snapshot?.lostChunks, !lost.isEmpty else { return nil }
        let groups = Array(Set(lost.map(\.group))).sorted().map(String.init).joined(separator: ", ")
        var text = " LOST \(lost.count) chunk\(lost.count == 1 ? "" : "s") in group\(groups.contains(",") ? "s" : "") \(groups) — "
        var users: [String] = []
        for user in lost.flatMap({ $0.usedBy ?? [] }) where !users.contains(user) { users.append(user) }
        if users.isEmpty {
            text += lost.allSatisfy { $0.usedBy == nil } ? "the blobs using them are not known yet" : "used by no blob"
        } else {
            text += "used by " + users.prefix(3).map(Self.shortBlob).joined(separator: ", ")
            if users.count > 3 { text += " and \(users.count - 3) more" }
        }
        text += " (docs/recovery.md) "
        return ScreenLine([Span(text, .banner)]).fitted(to: width, fill: .banner)
    }

    /// `repo@sha256:abcdef123456…`: a blob's repository and its digest's first 12 hex digits.
    static func shortBlob(_ blob: String) -> String {
        guard let at = blob.lastIndex(of: "@") else { return blob }
        let digest = blob[blob.index(after: at)...]
        guard let colon = digest.firstIndex(of: ":") else { return blob }
        let hex = digest[digest.index(after: colon)...]
        guard hex.count > 12 else { return blob }
        return String(blob[..<at]) + "@" + String(digest[...colon]) + String(hex.prefix(12)) + "…"
    }
}

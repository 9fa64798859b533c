import SpeedyCore

#if canImport(Glibc)
import Glibc
#endif

/// Lays the console out for a terminal of a given size: header, group table, detail and event
/// panes, footer, help overlay. A pure function of ``ConsoleState``.
public struct Dashboard: Sendable {
    public var glyphs: Glyphs

    public init(glyphs: Glyphs) { self.glyphs = glyphs }

    /// The screen, exactly `height` lines of `width` columns.
    public func render(_ state: ConsoleState, width: Int, height: Int, nowMs: Int64) -> [ScreenLine] {
        let width = max(width, 20)
        var lines: [ScreenLine] = []
        lines.append(titleLine(state, nowMs: nowMs))
        lines += totalsLines(state)
        lines.append(bannerLine(state, width: width, nowMs: nowMs))
        if let lost = lostLine(state.snapshot, width: width) { lines.append(lost) }
        let bottomHeight = max(7, (height - 6) / 3)
        let front = frontPane(state, width: width)
        let jobs = jobsPane(state, width: width)
        let tableHeight = max(1, height - lines.count - 1 - bottomHeight - 1 - front.count - jobs.count)
        lines += table(state, width: width, rows: tableHeight, nowMs: nowMs)
        lines += front
        lines += jobs
        lines += bottomPanes(state, width: width, height: bottomHeight, nowMs: nowMs)
        lines.append(footer(state))
        lines = Array(lines.prefix(height))
        while lines.count < height { lines.append(ScreenLine()) }
        var fitted = lines.map { $0.fitted(to: width) }
        if state.showHelp { overlayHelp(on: &fitted, width: width, height: height) }
        return fitted
    }

    // MARK: Header

    private func titleLine(_ state: ConsoleState, nowMs: Int64) -> ScreenLine {
        var line = ScreenLine()
        line.add(" Speedy ", .title)
        line.add("  master \(state.master)")
        if let updated = state.updatedAtMs {
            line.add("   updated \(Self.clock(updated))")
            if state.isStale { line.add(" (stale)", .degraded) }
        } else {
            line.add("   waiting for the master…", .dim)
        }
        line.add("   ? help  q quit", .dim)
        return line
    }

    private func totalsLines(_ state: ConsoleState) -> [ScreenLine] {
        var groups = ScreenLine()
        var capacity = ScreenLine()
        guard let t = state.snapshot?.totals else {
            groups.add(" no data yet", .dim)
            return [groups, capacity]
        }
        groups.add(" groups \(t.groups): ")
        groups.add("\(t.groupsHealthy) healthy", t.groupsHealthy > 0 ? .healthy : .dim)
        if t.groupsRecovering > 0 {
            groups.add(", ")
            groups.add("\(t.groupsRecovering) recovering", .transferring)
        }
        groups.add(", ")
        groups.add("\(t.groupsDegraded) degraded", t.groupsDegraded > 0 ? .degraded : .dim)
        if t.groupsReadOnly > 0 {
            groups.add(", ")
            groups.add("\(t.groupsReadOnly) read-only", .readOnly)
        }
        groups.add(", ")
        groups.add("\(t.groupsDown) down", t.groupsDown > 0 ? .down : .dim)
        groups.add(glyphs.separator)
        groups.add("servers \(t.serversUp)/\(t.servers) up", t.serversDown > 0 ? .degraded : .normal)
        if let spares = state.snapshot?.spares, !spares.isEmpty {
            groups.add(" + \(spares.count) spare\(spares.count == 1 ? "" : "s")", .transferring)
        }
        if let snapshot = state.snapshot, case let damaged = Self.damagedTotal(snapshot), damaged > 0 {
            groups.add(glyphs.separator)
            groups.add("\(Self.damagedLabel(damaged)) damaged", .down)
        }
        let pct = t.usableTotalBytes > 0 ? Double(t.usableUsedBytes) / Double(t.usableTotalBytes) * 100 : 0
        capacity.add(" capacity \(ByteSize.format(t.usableUsedBytes)) / \(ByteSize.format(t.usableTotalBytes)) used (\(ByteSize.formatDecimal(pct, places: 1))%)")
        capacity.add("  raw \(ByteSize.format(t.diskUsedBytes)) / \(ByteSize.format(t.diskTotalBytes))", .dim)
        capacity.add(glyphs.separator)
        capacity.add("read \(Self.rate(t.readBytesPerSec))  write \(Self.rate(t.writeBytesPerSec))")
        if let snapshot = state.snapshot, snapshot.groups.contains(where: { $0.reclaimableBytes != nil }) {
            capacity.add(glyphs.separator)
            capacity.add("reclaimable \(ByteSize.format(snapshot.groups.compactMap(\.reclaimableBytes).reduce(0, +)))", .dim)
        }
        return [groups, capacity]
    }

    private func bannerLine(_ state: ConsoleState, width: Int, nowMs: Int64) -> ScreenLine {
        if let error = state.connectionError {
            var line = ScreenLine()
            let since = state.updatedAtMs.map { "showing data from \(Self.clock($0))" } ?? "no data yet"
            line.add(" master unreachable: \(error) — \(since), retrying in \(state.retryInSeconds)s ", .banner)
            return line
        }
        return ScreenLine([Span(String(repeating: glyphs.rule, count: width), .dim)])
    }

    // MARK: Group table

    struct Columns {
        var group = 4, state = 12, server = 8, status = 6, bar = 8, rate = 10, addr = 0, scrub = 0, spark = 7
    }

    private func columns(width: Int) -> Columns {
        var c = Columns()
        // Fixed part: group, state, server, status, "[bar] 100.0%", read, write, with spaces.
        let fixed = c.group + 1 + c.state + 1 + c.server + 1 + c.status + 1 + (c.bar + 9) + 1 + c.rate + 1 + c.rate + 1
        var spare = width - fixed - c.spark
        // The scrub column comes before the address: at 80 columns neither fits.
        if spare >= Self.scrubColumnWidth + 1 {
            c.scrub = Self.scrubColumnWidth
            spare -= c.scrub + 1
        }
        if spare >= 24 {
            c.addr = 21
            spare -= 22
        }
        if spare > 0 {
            c.bar += spare / 3
            c.server += spare / 6
            spare -= spare / 3 + spare / 6
        }
        let optional = (c.addr > 0 ? c.addr + 1 : 0) + (c.scrub > 0 ? c.scrub + 1 : 0)
        c.spark = max(3, width - (fixed + optional + (c.bar - 8) + (c.server - 8)))
        return c
    }

    func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : text + String(repeating: " ", count: width - text.count)
    }

    func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? String(text.prefix(width)) : String(repeating: " ", count: width - text.count) + text
    }

    func stateStyle(_ state: GroupState) -> TextStyle {
        switch state {
        case .healthy: .healthy
        case .recovering: .transferring
        case .degraded: .degraded
        case .readOnly: .readOnly
        case .down: .down
        }
    }

    func glyph(_ state: GroupState) -> String {
        switch state {
        case .healthy: glyphs.healthy
        case .recovering: glyphs.recovering
        case .degraded: glyphs.degraded
        case .readOnly: glyphs.readOnly
        case .down: glyphs.down
        }
    }

    /// The status as the narrow column shows it.
    func statusLabel(_ status: ServerStatus) -> String {
        switch status {
        case .transferring: "XFER"
        case .offline: "OFF"
        default: status.rawValue
        }
    }

    func statusStyle(_ status: ServerStatus) -> TextStyle {
        switch status {
        case .readWrite: .healthy
        case .readOnly: .readOnly
        case .initializing, .transferring: .transferring
        case .error, .down, .offline: .down
        }
    }

    private func table(_ state: ConsoleState, width: Int, rows height: Int, nowMs: Int64) -> [ScreenLine] {
        let c = columns(width: width)
        var header = ScreenLine()
        var title = pad("GRP", c.group) + " " + pad("STATE", c.state) + " " + pad("SERVER", c.server) + " "
        if c.addr > 0 { title += pad("ADDRESS", c.addr) + " " }
        title += pad("STATUS", c.status) + " " + pad("DISK", c.bar + 9) + " "
        if c.scrub > 0 { title += pad("SCRUB", c.scrub) + " " }
        title += padLeft("READ/s", c.rate) + " "
            + padLeft("WRITE/s", c.rate) + " " + "LAST 60s"
        header.add(title, .heading)
        var lines = [header]
        let rows = state.rows
        if rows.isEmpty {
            lines.append(ScreenLine([Span(state.snapshot == nil ? " waiting for the first snapshot…" : (state.filter.isEmpty ? " no chunkserver has reported yet" : " nothing matches the filter '\(state.filter)'"), .dim)]))
            return lines + Array(repeating: ScreenLine(), count: max(0, height - 1))
        }
        // Keep the selection in view.
        let selection = min(state.selection, rows.count - 1)
        let top = max(0, min(selection - height + 1, rows.count - height))
        for (index, row) in rows.enumerated().dropFirst(max(0, top)).prefix(height) {
            var line = ScreenLine()
            let selected = index == selection && state.focus == .groups
            if let group = row.group {
                line.add(pad(row.firstOfGroup ? String(group.id) : "", c.group) + " ")
                if row.firstOfGroup {
                    line.add(pad(glyph(group.state) + " " + group.state.rawValue, c.state), stateStyle(group.state))
                } else {
                    line.add(pad("", c.state))
                }
            } else if let spare = row.member {
                line.spans.append(spareCell(spare, width: c.group + 1 + c.state))
            }
            line.add(" ")
            guard let m = row.member else {
                line.add("(no members)", .dim)
                lines.append(selected ? line.fitted(to: width, fill: .selected) : line)
                continue
            }
            line.spans += memberCells(m, c, nowMs: nowMs)
            lines.append(selected ? line.fitted(to: width, fill: .selected) : line)
        }
        while lines.count < height + 1 { lines.append(ScreenLine()) }
        return lines
    }

    /// A member's cells of the table, from its id to its sparkline.
    private func memberCells(_ m: MemberSnapshot, _ c: Columns, nowMs: Int64) -> [Span] {
        var line = ScreenLine()
        line.add(pad(m.id, c.server) + " ")
        if c.addr > 0 { line.add(pad(m.addr, c.addr) + " ", .dim) }
        line.add(pad(statusLabel(m.status), c.status), statusStyle(m.status))
        line.add(" ")
        let fill = m.diskTotalBytes > 0 ? Double(m.diskUsedBytes) / Double(m.diskTotalBytes) : 0
        let filled = min(c.bar, Int((fill * Double(c.bar)).rounded()))
        line.add("[" + String(repeating: glyphs.barFull, count: filled) + String(repeating: glyphs.barEmpty, count: c.bar - filled) + "]",
            fill > 0.9 ? .down : (fill > 0.75 ? .degraded : .accent))
        line.add(padLeft(ByteSize.formatDecimal(fill * 100, places: 1) + "%", 7) + " ")
        if c.scrub > 0 {
            line.spans.append(scrubCell(m, nowMs: nowMs))
            line.add(" ")
        }
        line.add(padLeft(Self.rate(m.readBytesPerSec), c.rate) + " " + padLeft(Self.rate(m.writeBytesPerSec), c.rate) + " ")
        line.add(sparkline(m.history, width: c.spark), .accent)
        return line.spans
    }

    /// Read+write throughput per second, scaled to the busiest second shown.
    func sparkline(_ history: ThroughputHistory?, width: Int) -> String {
        guard let history, width > 0 else { return "" }
        let totals = zip(history.readBytesPerSec, history.writeBytesPerSec).map { $0 + $1 }.suffix(width)
        guard let peak = totals.max(), peak > 0 else {
            return String(repeating: glyphs.spark[0], count: totals.count)
        }
        let levels = glyphs.spark.count - 1
        return String(totals.map { glyphs.spark[min(levels, Int(($0 / peak * Double(levels)).rounded()))] })
    }

    // MARK: Front roles and jobs

    /// The imageservers and metaservers, one line each: what users feel (throughput, request and
    /// error rates) and whether each is up and ready.
    func frontPane(_ state: ConsoleState, width: Int) -> [ScreenLine] {
        guard let snapshot = state.snapshot else { return [] }
        let roles = (snapshot.imageservers ?? []).map { ("imageserver", $0) } + (snapshot.metaservers ?? []).map { ("metaserver", $0) }
        var lines = [ScreenLine([Span(" Front " + String(repeating: glyphs.rule, count: max(0, width - 7)), .heading)])]
        let swarm = swarmLine(state.trackers).map { ScreenLine([Span(" swarm " + $0, .normal)]) }
        if roles.isEmpty {
            lines.append(ScreenLine([Span(" no imageserver or metaserver reports to the master", .dim)]))
            return lines + (swarm.map { [$0] } ?? [])
        }
        let idWidth = min(30, roles.map(\.1.id.count).max() ?? 0)
        for (role, r) in roles.prefix(6) {
            var line = ScreenLine()
            line.add(" " + pad(role == "imageserver" ? "image" : "meta", 6))
            line.add(pad(r.id, idWidth) + " ", .dim)
            let status = r.status == .down ? "DOWN" : (r.ready ? "UP" : "UP!")
            line.add(pad(status, 5), r.status == .down ? .down : (r.ready ? .healthy : .degraded))
            line.add("req \(ByteSize.formatDecimal(r.requestsPerSec, places: 1))/s")
            let errorStyle: TextStyle = r.serverErrorsPerSec > 0 ? .down : (r.clientErrorsPerSec > 0 ? .degraded : .normal)
            line.add(
                "  4xx/5xx \(ByteSize.formatDecimal(r.clientErrorsPerSec, places: 1))/\(ByteSize.formatDecimal(r.serverErrorsPerSec, places: 1))",
                errorStyle)
            let (inName, outName) = role == "imageserver" ? ("push", "pull") : ("in", "out")
            line.add("  \(inName) \(Self.rate(r.bytesInPerSec))  \(outName) \(Self.rate(r.bytesOutPerSec))")
            if role == "imageserver" { line.add("  uploads \(r.openUploads)") }
            line.add("  mem \(ByteSize.format(r.residentBytes))", .dim)
            if !r.ready, r.status == .up, let reason = r.notReadyReason { line.add("  not ready: \(reason)", .degraded) }
            lines.append(line)
        }
        if roles.count > 6 { lines.append(ScreenLine([Span(" … and \(roles.count - 6) more (chunktool status lists all)", .dim)])) }
        if let swarm { lines.append(swarm) }
        return lines
    }

    /// The node agents' swarm in one line, summed over the trackers that are up and report one:
    /// `agents 8 (1 quarantined) │ peers serve 23.1 MiB/s │ tracker 120 announces/s, 300 lookups/s`. Nil when no
    /// tracker reports, so a cluster without agents shows nothing.
    public func swarmLine(_ trackers: [RoleSnapshot]) -> String? {
        let swarms = trackers.filter { $0.status == .up }.compactMap(\.swarm)
        guard !swarms.isEmpty else { return nil }
        let agents = swarms.reduce(0) { $0 + $1.agents }
        let served = swarms.reduce(0.0) { $0 + $1.servedBytesPerSecond }
        let announces = swarms.reduce(0.0) { $0 + $1.announcesPerSecond }
        let lookups = swarms.reduce(0.0) { $0 + $1.lookupsPerSecond }
        let dot = glyphs.separator
        let who = swarms.count == 1 ? "tracker" : "\(swarms.count) trackers"
        // Agents reported for bad chunks (left out of lookups) are what an operator must look at.
        let quarantined = Set(swarms.flatMap { $0.quarantined ?? [] }).count
        let out = quarantined == 0 ? "" : " (\(quarantined) quarantined)"
        return "agents \(agents)\(out)\(dot)peers serve \(Self.rate(served))\(dot)\(who) "
            + "\(ByteSize.formatDecimal(announces, places: 0)) announces/s, \(ByteSize.formatDecimal(lookups, places: 0)) lookups/s"
    }

    /// Operator jobs (verify, repair, transfer) with a progress bar, rate and time left; nothing
    /// when there are none.
    func jobsPane(_ state: ConsoleState, width: Int) -> [ScreenLine] {
        let jobs = state.snapshot?.jobs ?? []
        guard !jobs.isEmpty else { return [] }
        var lines = [ScreenLine([Span(" Jobs " + String(repeating: glyphs.rule, count: max(0, width - 6)), .heading)])]
        // The master's own jobs have longer names (`repair group 1 (damaged chunks)`,
        // `transfer group 1: spare s1`): shown whole when the terminal is wide.
        let longest = jobs.prefix(3).map { "\($0.report.kind) \($0.report.target)".count }.max() ?? 0
        let labelWidth = width >= 120 ? min(36, max(28, longest)) : 28
        for job in jobs.prefix(3) {
            let r = job.report
            var line = ScreenLine()
            line.add(" " + pad("\(r.kind) \(r.target)", labelWidth) + " ")
            let barWidth = 20
            let filled = min(barWidth, Int((job.fraction * Double(barWidth)).rounded(.down)))
            let style: TextStyle =
                switch r.state {
                case .running: .accent
                case .finished: .healthy
                case .failed, .lost: .down
                }
            line.add("[" + String(repeating: glyphs.barFull, count: filled) + String(repeating: glyphs.barEmpty, count: barWidth - filled) + "]", style)
            line.add(padLeft(ByteSize.formatDecimal(job.fraction * 100, places: 0) + "%", 5))
            line.add("  \(r.done)/\(r.total) \(Self.itemName(of: r.kind))  \(Self.rate(job.bytesPerSec))")
            switch r.state {
            case .running:
                if let eta = job.etaSeconds { line.add("  ETA \(eta / 60):\(eta % 60 < 10 ? "0" : "")\(eta % 60)") }
            case .finished, .failed, .lost:
                line.add("  \(r.state.rawValue)" + (r.message.map { ": \($0)" } ?? ""), style)
            }
            if let actor = job.actor { line.add("  \(actor)", .dim) }
            lines.append(line)
        }
        return lines
    }

    // MARK: Detail and events

    private func bottomPanes(_ state: ConsoleState, width: Int, height: Int, nowMs: Int64) -> [ScreenLine] {
        let leftWidth = max(40, min(48, width / 2))
        let left = detail(state, height: height, width: leftWidth, nowMs: nowMs)
        let right = events(state, height: height)
        return (0..<height).map { i in
            var line = (i < left.count ? left[i] : ScreenLine()).fitted(to: leftWidth)
            line.add(i == 0 ? String(glyphs.rule) : glyphs.separator.filter { $0 != " " } + " ", .dim)
            line.spans += (i < right.count ? right[i] : ScreenLine()).spans
            return line
        }
    }

    private func detail(_ state: ConsoleState, height: Int, width: Int, nowMs: Int64) -> [ScreenLine] {
        let rows = state.rows
        var lines = [ScreenLine([Span(" Detail " + String(repeating: glyphs.rule, count: max(0, width - 8)), .heading)])]
        guard state.showDetail, !rows.isEmpty else {
            lines.append(ScreenLine([Span(" Enter shows the selected server", .dim)]))
            return lines
        }
        let row = rows[min(state.selection, rows.count - 1)]
        var name = ScreenLine()
        if let group = row.group {
            name.add(" group \(group.id) ")
            name.add(glyph(group.state) + " " + group.state.rawValue, stateStyle(group.state))
            // A draining group takes no new chunks; its state alone would not say so.
            if group.draining == true { name.add("  draining", .dim) }
            if let dead = group.reclaimableBytes { name.add("  dead \(ByteSize.format(dead))", .dim) }
        } else {
            name.add(" spare", .transferring)
            name.add("  in no group yet", .dim)
        }
        lines.append(name)
        guard let m = row.member else { return lines }
        var status = ScreenLine()
        status.add(" \(m.id) ")
        status.add(m.status.rawValue, statusStyle(m.status))
        status.add(" heartbeat " + (m.lastHeartbeatAgeMs < 0 ? "never" : "\(m.lastHeartbeatAgeMs) ms ago"))
        lines.append(status)
        var addr = ScreenLine([Span(" addr    \(m.addr)")])
        if let zone = m.zone { addr.add("  zone \(zone)") }
        lines.append(addr)
        let pct = m.diskTotalBytes > 0 ? Double(m.diskUsedBytes) / Double(m.diskTotalBytes) * 100 : 0
        lines.append(ScreenLine([Span(" disk    \(ByteSize.format(m.diskUsedBytes)) / \(ByteSize.format(m.diskTotalBytes)) (\(ByteSize.formatDecimal(pct, places: 1))%)")]))
        // Before the rest: the table shows the scrub only when the terminal is wide enough.
        lines += scrubDetail(m, nowMs: nowMs, width: width)
        lines.append(ScreenLine([Span(" free    \(ByteSize.format(m.diskFreeBytes))  chunks \(m.chunkCount)")]))
        lines.append(ScreenLine([Span(" read    \(Self.rate(m.readBytesPerSec))  \(ByteSize.formatDecimal(m.readOpsPerSec, places: 1)) op/s")]))
        lines.append(ScreenLine([Span(" write   \(Self.rate(m.writeBytesPerSec))  \(ByteSize.formatDecimal(m.writeOpsPerSec, places: 1)) op/s")]))
        var errors = ScreenLine()
        errors.add(" errors  ")
        errors.add("crc \(m.crcErrors)  io \(m.ioErrors)", m.crcErrors + m.ioErrors > 0 ? .down : .normal)
        errors.add("  pending \(m.pendingWrites)")
        lines.append(errors)
        lines.append(ScreenLine([Span(" uptime  \(Self.duration(ms: Int64(m.uptimeMs)))")]))
        // Space compaction can give back (dead records) and has given back since the server started.
        if let reclaimable = m.reclaimableBytes {
            lines.append(ScreenLine([Span(" space   dead \(ByteSize.format(reclaimable))  freed \(ByteSize.format(m.reclaimedBytes ?? 0))")]))
        }
        return Array(lines.prefix(height))
    }

    private func events(_ state: ConsoleState, height: Int) -> [ScreenLine] {
        var lines = [ScreenLine([Span(" Events" + (state.focus == .events ? " (↑↓ scroll)" : "") + " ", .heading)])]
        let events = state.snapshot?.recentEvents ?? []
        if events.isEmpty { lines.append(ScreenLine([Span("no events yet", .dim)])) }
        for event in events.dropFirst(min(state.eventScroll, max(0, events.count - 1))).prefix(height - 1) {
            var line = ScreenLine()
            line.add(Self.clock(event.timeMs) + " ", .dim)
            let style: TextStyle =
                switch event.kind {
                case "server-down", "disk-errors", "chunk-lost", "chunk-damaged": .down
                case "server-up", "server-joined", "chunk-repaired", "chunk-found", "spare-filled": .healthy
                case "group-state": event.message.contains("healthy") ? .healthy : .degraded
                default: .normal
                }
            line.add(event.message, style)
            lines.append(line)
        }
        return lines
    }

    private func footer(_ state: ConsoleState) -> ScreenLine {
        var line = ScreenLine()
        if let prompt = state.prompt {
            line.add(" " + prompt.text + " ", .banner)
        } else if state.editingFilter {
            line.add(" filter: ", .heading)
            line.add(state.filter + "_")
            line.add("   Enter keep  Esc clear", .dim)
        } else {
            // What is in force or just happened comes first: the key hints are clipped on narrow screens.
            if !state.filter.isEmpty { line.add(" filter: \(state.filter) (Esc clears) ", .accent) }
            if let notice = state.notice { line.add(" \(notice) ", .accent) }
            line.add(" ↑↓/jk move  Enter detail  s set status  v verify  / filter  ? help  q quit", .dim)
        }
        return line
    }

    // MARK: Help

    static let helpText = [
        "Speedy console: keys",
        "",
        "  ↑ ↓  j k     move between servers (or scroll events)",
        "  PgUp PgDn    move ten at a time",
        "  Enter        show or hide the selected server's detail",
        "  Tab          switch between the group table and events",
        "  / (Esc)      filter by group, server, address (clear it)",
        "  s            set the selected server RW, RO or OFFLINE",
        "  v            verify the selected server's group",
        "               (both ask to confirm; the event log says who)",
        "  ?            this help (any key closes it)",
        "  q, Ctrl-C    quit",
        "",
        "States: healthy (all members RW), recovering (a replacement",
        "is being filled by transfer), degraded (a member down,",
        "read-only or failing), read-only (all RO), down (none up).",
        "Servers: RW, RO, ERR, INIT, DOWN, OFF (set offline by an",
        "operator), XFER (a replacement being filled by transfer).",
        "SCRUB: % of this pass (idle between), age of the last full",
        "pass, or N damaged. spare rows: in no group yet, and zone.",
    ]

    private func overlayHelp(on lines: inout [ScreenLine], width: Int, height: Int) {
        let boxWidth = min(width - 2, 64)
        let boxHeight = min(height - 2, Self.helpText.count + 2)
        let left = max(0, (width - boxWidth) / 2)
        let top = max(0, (height - boxHeight) / 2)
        for i in 0..<boxHeight {
            let text = i == 0 || i == boxHeight - 1 ? "" : (i - 1 < Self.helpText.count ? Self.helpText[i - 1] : "")
            let row = top + i
            guard row < lines.count else { break }
            var line = ScreenLine()
            let original = lines[row]
            line.spans += original.fitted(to: left).spans
            line.add(pad(" " + text, boxWidth), i == 1 ? .title : .selected)
            // What lies right of the box stays as it was.
            let rightStart = left + boxWidth
            var used = 0
            for span in original.spans {
                let end = used + span.text.count
                if end > rightStart {
                    let skip = max(0, rightStart - used)
                    line.add(String(span.text.dropFirst(skip)), span.style)
                }
                used = end
            }
            lines[row] = line.fitted(to: width)
        }
    }

    // MARK: Formatting

    /// What a job of `kind` counts in its done/total.
    static func itemName(of kind: String) -> String {
        switch kind {
        case "gc": "steps"
        case "sync": "tags"
        default: "chunks"
        }
    }

    static func rate(_ bytesPerSecond: Double) -> String { ByteSize.format(bytesPerSecond) + "/s" }

    /// HH:MM:SS in local time.
    static func clock(_ ms: Int64) -> String {
        var seconds = time_t(ms / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
    }

    static func duration(ms: Int64) -> String {
        let s = ms / 1000
        if s < 60 { return "\(s)s" }
        if s < 3600 { return "\(s / 60)m\(s % 60)s" }
        return "\(s / 3600)h\((s % 3600) / 60)m"
    }
}

import SpeedyCore

/// Everything the console shows, and where the operator is in it: plain data, so the view is a
/// pure function of it and is tested without a terminal.
public struct ConsoleState: Sendable {
    /// The master being watched.
    public var master: String
    /// The last snapshot received, if any.
    public var snapshot: ClusterSnapshot?
    /// The trackers of node agents' swarms as the master last heard from them (each
    /// ``RoleSnapshot/swarm`` carries its swarm); empty while no tracker reports.
    public var trackers: [RoleSnapshot] = []
    /// Wall-clock milliseconds when `snapshot` arrived.
    public var updatedAtMs: Int64?
    /// Why the last refresh failed, while it keeps failing.
    public var connectionError: String?
    /// Seconds until the next retry, while failing.
    public var retryInSeconds: Int = 0
    /// The selected member row (an index into ``rows``).
    public var selection = 0
    /// Which pane keys act on.
    public var focus: Focus = .groups
    /// Whether the detail pane shows the selected server.
    public var showDetail = true
    /// Whether the help overlay is up.
    public var showHelp = false
    /// Filter text: rows whose group id, server id or address contains it.
    public var filter = ""
    /// Whether the filter is being typed.
    public var editingFilter = false
    /// How far the event pane is scrolled (0 = newest at top).
    public var eventScroll = 0
    /// The question being asked, if any; keys answer it first.
    public var prompt: ConsolePrompt?
    /// Confirmed actions the console has yet to carry out (see ``takeActions()``).
    public var pendingActions: [ConsoleAction] = []
    /// What the last action did or why it failed, for the footer.
    public var notice: String?

    /// The panes Tab moves between.
    public enum Focus: Sendable, Equatable { case groups, events }

    /// Creates the state for watching `master`.
    public init(master: String) { self.master = master }

    /// One member of one group, or one spare: a line of the group table.
    public struct Row: Sendable, Equatable {
        /// The member's group; nil for a spare (a chunkserver started with `--spare` that no
        /// group has taken yet).
        public var group: GroupSnapshot?
        public var member: MemberSnapshot?
        public var firstOfGroup: Bool

        /// Whether the row is a spare's.
        public var isSpare: Bool { group == nil }
    }

    /// The group table's rows after the filter: one per member (a group with no members gets
    /// one), then one per spare. The filter matches a group id, a server id or address, and
    /// for spares also `spare` and the zone.
    public var rows: [Row] {
        guard let snapshot else { return [] }
        let needle = filter.lowercased()
        func matches(_ member: MemberSnapshot) -> Bool {
            member.id.lowercased().contains(needle) || member.addr.lowercased().contains(needle)
        }
        var rows: [Row] = []
        for group in snapshot.groups {
            let members = group.members.filter { member in
                needle.isEmpty || String(group.id).contains(needle) || matches(member)
            }
            if members.isEmpty {
                if needle.isEmpty || String(group.id).contains(needle) { rows.append(Row(group: group, member: nil, firstOfGroup: true)) }
                continue
            }
            for (i, member) in members.enumerated() { rows.append(Row(group: group, member: member, firstOfGroup: i == 0)) }
        }
        let spares = (snapshot.spares ?? []).filter { spare in
            needle.isEmpty || "spare".contains(needle) || matches(spare) || (spare.zone?.lowercased().contains(needle) ?? false)
        }
        for (i, spare) in spares.enumerated() { rows.append(Row(group: nil, member: spare, firstOfGroup: i == 0)) }
        return rows
    }

    /// Whether the data shown is older than the last refresh attempt.
    public var isStale: Bool { connectionError != nil }
}

/// What a key press does.
public enum ConsoleKey: Sendable, Equatable {
    case up, down, pageUp, pageDown, enter, tab, slash, help, quit, escape, backspace
    case character(Character)
}

extension ConsoleState {
    /// The confirmed actions, which are then no longer pending.
    public mutating func takeActions() -> [ConsoleAction] {
        defer { pendingActions = [] }
        return pendingActions
    }

    /// The selected row, if any.
    public var selectedRow: Row? {
        let rows = rows
        return rows.isEmpty ? nil : rows[min(selection, rows.count - 1)]
    }

    /// Answers the prompt with `key`: a choice moves on to the confirmation, `y` confirms, any
    /// other key cancels.
    private mutating func answer(_ prompt: ConsolePrompt, with key: ConsoleKey) {
        self.prompt = nil
        switch prompt {
        case .chooseStatus(let server):
            let choice: ServerStatus? =
                switch key {
                case .character("w"): .readWrite
                case .character("r"): .readOnly
                case .character("o"): .offline
                default: nil
                }
            if let choice {
                self.prompt = .confirm(.setStatus(server: server, status: choice))
            } else {
                notice = "cancelled"
            }
        case .confirm(let action):
            if key == .character("y") || key == .character("Y") {
                pendingActions.append(action)
                notice = action.sent
            } else {
                notice = "cancelled"
            }
        }
    }

    /// Applies a key; returns false when the console should exit.
    public mutating func handle(_ key: ConsoleKey) -> Bool {
        if let prompt {
            answer(prompt, with: key)
            return true
        }
        if editingFilter {
            switch key {
            case .enter: editingFilter = false
            case .escape:
                editingFilter = false
                filter = ""
            case .backspace: if !filter.isEmpty { filter.removeLast() }
            case .character(let c): filter.append(c)
            case .slash: filter.append("/")
            case .help: filter.append("?")
            default: break
            }
            selection = min(selection, max(0, rows.count - 1))
            return true
        }
        if showHelp {
            if key == .quit || key == .character("q") { return false }
            showHelp = false
            return true
        }
        switch key {
        case .quit, .character("q"): return false
        case .help: showHelp = true
        case .tab: focus = focus == .groups ? .events : .groups
        case .slash:
            editingFilter = true
        case .escape:
            filter = ""
        case .enter: showDetail.toggle()
        case .character("s"):
            if let server = selectedRow?.member?.id { prompt = .chooseStatus(server: server) } else { notice = "select a server first" }
        case .character("v"):
            if let group = selectedRow?.group?.id {
                prompt = .confirm(.verify(group: group))
            } else {
                notice = selectedRow?.isSpare == true ? "a spare is in no group yet: nothing to verify" : "no group to verify"
            }
        case .up, .character("k"):
            if focus == .groups { selection = max(0, selection - 1) } else { eventScroll = max(0, eventScroll - 1) }
        case .down, .character("j"):
            if focus == .groups { selection = min(max(0, rows.count - 1), selection + 1) } else { eventScroll += 1 }
        case .pageUp: if focus == .groups { selection = max(0, selection - 10) } else { eventScroll = max(0, eventScroll - 10) }
        case .pageDown:
            if focus == .groups { selection = min(max(0, rows.count - 1), selection + 10) } else { eventScroll += 10 }
        default: break
        }
        return true
    }
}

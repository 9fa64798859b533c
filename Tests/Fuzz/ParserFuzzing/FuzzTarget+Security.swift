import SpeedyCore

/// The parsers of credentials, access rules and client addresses.
extension FuzzTarget {
    static let security: [FuzzTarget] = [accessFile, htpasswd, roleTable, basicAuth, forwarded, network, retentionFile, syncFile]

    /// The metaserver's retention file (`--retention`): every rule it keeps has a condition, and
    /// a rule decides once for every tag it is given.
    static let retentionFile = FuzzTarget("retention-file", "the retention file (PATTERN keep-… lines)") { input in
        guard let policy = try? RetentionPolicy(parsing: text(input)) else { return nil }
        let tags = ["latest", "v1.2.3", "sha256-" + String(repeating: "a", count: 64) + ".sig", "rc-1"].enumerated().map { index, tag in
            TagDetail(tag: tag, digest: Digest.of([UInt8(index % 2)]), pushedMs: Int64(index) * 1_000_000, pulledMs: 0)
        }
        for repository in repositories {
            guard let rule = policy.rule(for: repository) else { continue }
            let verdicts = RetentionPlan.decide(tags, rule: rule, nowMs: 10_000_000)
            if verdicts.count != tags.count { return "\(verdicts.count) verdicts for \(tags.count) tags" }
        }
        return expect(policy.rules.allSatisfy { $0.keepNewest != nil || $0.keepRecent != nil || !$0.keepTags.isEmpty }, "a rule with no condition")
    }

    /// The metaserver's sync file (`--sync`): every job it keeps is whole (ends, a rule, a
    /// schedule of at least a second) and its names are unique.
    static let syncFile = FuzzTarget("sync-file", "the sync file (sync/from/to/rule lines)") { input in
        guard let jobs = try? SyncJobFile.parse(text(input)) else { return nil }
        for job in jobs {
            if job.rules.isEmpty || job.every < SyncJobFile.minimumInterval || !SyncJob.isValidName(job.name) { return "job \(job.name) kept incomplete" }
            for rule in job.rules { _ = rule.destination(of: "team/app") }
        }
        return expect(Set(jobs.map(\.name)).count == jobs.count, "two jobs of one name")
    }

    /// Names an access file's rules are matched against.
    private static let repositories = ["team/app", "a", "public/x/y", "team/app/x", String(repeating: "a/", count: 60) + "b"]

    /// The access file (`--access-file`): what parses answers every question without trapping,
    /// and its patterns stay within their bound of wildcards.
    static let accessFile = FuzzTarget("access-file", "the access file (WHO PATTERN ACTIONS lines)") { input in
        guard let policy = try? AccessPolicy(parsing: text(input)) else { return nil }
        for user in ["admin", "alice", nil] as [String?] {
            for repository in repositories { _ = policy.actions(for: user, on: repository) }
            _ = policy.pullsAnything(user)
        }
        return expect(policy.rules.allSatisfy { !$0.actions.isEmpty }, "a rule with no actions")
    }

    /// The htpasswd file (`--htpasswd`): every user it keeps has a printable name and a bcrypt hash.
    static let htpasswd = FuzzTarget("htpasswd", "the htpasswd file (user:bcrypt-hash lines)") { input in
        guard let file = try? UserFile(parsing: text(input)) else { return nil }
        return expect(
            file.hashes.allSatisfy { user, hash in !user.isEmpty && !user.contains(":") && hash.utf8.count == 60 && hash.hasPrefix("$2") },
            "kept a user or hash it should have refused")
    }

    /// The role table (`--role-table`): what parses has bounded, distinct entries of the right
    /// sizes, prints back to the same table, and looks up any header without trapping.
    static let roleTable = FuzzTarget("role-table", "the role table (ROLE PORT SHA256-HEX [ed25519:KEY] lines)") { input in
        let text = text(input)
        guard let table = try? RoleTable.parse(text) else { return nil }
        let hashes = table.entries.map(\.secretHash)
        let reread = try? RoleTable.parse(table.text)
        _ = table.role(carriedBy: "Bearer " + text.prefix(80), at: .chunkserver)
        return first(
            expect(!table.entries.isEmpty && table.entries.count <= RoleTable.maximumEntries, "\(table.entries.count) entries"),
            expect(hashes.allSatisfy { $0.count == 32 } && Set(hashes).count == hashes.count, "a hash of the wrong size, or twice"),
            expect(table.entries.allSatisfy { $0.ticketKey == nil || ($0.role == .imageserver && $0.ticketKey!.count == 32) }, "a ticket key where none belongs"),
            expect(reread == table, "the table does not read back from its own text"))
    }

    /// `Authorization: Basic …`: what parses is the header it came from.
    static let basicAuth = FuzzTarget("basic-auth", "an Authorization: Basic header") { input in
        let header = text(input)
        guard let credentials = BasicCredentials(header: header) else { return nil }
        return first(
            expect(!credentials.user.contains(":"), "a user name with a colon"),
            expect(header.utf8.count <= BasicCredentials.maximumHeaderBytes, "a header over the limit was read"))
    }

    /// `X-Forwarded-For` and `Forwarded` from a trusted proxy: every hop is an address or nothing,
    /// and no more hops are read than asked for.
    static let forwarded = FuzzTarget("forwarded", "X-Forwarded-For and Forwarded headers") { input in
        let value = text(input)
        for header in TrustedProxies.Header.allCases {
            let hops = TrustedProxies.hops(value, header: header, last: TrustedProxies.maximumHops)
            if hops.count > TrustedProxies.maximumHops { return "\(hops.count) hops read" }
            for case let bytes? in hops where bytes.count != 4 && bytes.count != 16 { return "a hop of \(bytes.count) bytes" }
        }
        return nil
    }

    /// `--trusted-proxy CIDR`: what parses holds its own address and prints back to itself.
    static let network = FuzzTarget("network", "a --trusted-proxy network (CIDR)") { input in
        guard let network = IPNetwork(text(input)) else { return nil }
        return first(
            expect(network.prefixLength <= network.address.count * 8, "prefix /\(network.prefixLength)"),
            expect(network.contains(network.address), "\(network) does not hold its own address"),
            expect(IPNetwork(network.description) == network, "\(network) parses differently"))
    }
}

import Foundation

/// The metaserver's sync file (`--sync`, docs/registry.md "Replication"): jobs, each a `sync`
/// line and the lines under it, up to the next `sync`:
///
/// ```
/// # comments run to the end of a line
/// sync hub-mirror every=1h delete                 # NAME, how often, and whether to delete
/// from https://registry.example:5000 credentials=/etc/speedy/example-login ca=/etc/speedy/example-ca.pem
/// to http://127.0.0.1:6788 credentials=/etc/speedy/sync-login
/// rule team/*:v* -> mirror                          # one or more, as `chunktool sync` takes them
/// ```
///
/// A file with no job is valid (the metaserver then syncs nothing until the file has one and is
/// re-read on SIGHUP). `#` starts a comment anywhere, so paths cannot hold one.
public enum SyncJobFile {
    /// The shortest `every` (a job is not a busy loop).
    public static let minimumInterval = Duration.seconds(1)
    /// The most jobs a file holds.
    public static let maximumJobs = 1000

    /// The jobs of `text`, in file order.
    /// - Throws: ``SyncJobError`` naming the line at fault and what is wrong with it.
    public static func parse(_ text: String) throws(SyncJobError) -> [SyncJob] {
        var jobs: [SyncJob] = []
        var open: Draft?
        for (index, rawLine) in text.configurationLines.enumerated() {
            let number = index + 1
            let line = (rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            guard !line.isEmpty else { continue }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words[0] == "sync", let done = open {
                jobs.append(try finished(done))
                open = nil
            }
            do throws(SyncJobError) {
                if words[0] == "sync" {
                    guard jobs.count < maximumJobs else { throw SyncJobError("more than \(maximumJobs) jobs") }
                    let draft = try Draft(words: words, line: number)
                    guard !jobs.contains(where: { $0.name == draft.name }) else { throw SyncJobError("a second job named \(draft.name)") }
                    open = draft
                } else {
                    guard var draft = open else { throw SyncJobError("'\(words[0].prefix(40))' before any `sync NAME every=DURATION` line") }
                    try draft.add(words, line: line)
                    open = draft
                }
            } catch {
                throw SyncJobError("line \(number): \(error.description)")
            }
        }
        if let open { jobs.append(try finished(open)) }
        return jobs
    }

    /// The job `draft` makes; an error names its `sync` line.
    private static func finished(_ draft: Draft) throws(SyncJobError) -> SyncJob {
        do {
            return try draft.job()
        } catch {
            throw SyncJobError("line \(draft.line): \(error.description)")
        }
    }

    /// A job while its lines are read.
    private struct Draft {
        var name: String
        var line: Int
        var every: Duration
        var deleteMissing = false
        var source: SyncEndpoint?
        var destination: SyncEndpoint?
        var rules: [SyncRule] = []

        init(words: [String], line: Int) throws(SyncJobError) {
            guard words.count >= 3, SyncJob.isValidName(words[1]) else {
                throw SyncJobError("expected `sync NAME every=DURATION [delete]`, NAME of a-z 0-9 . _ - (at most 64)")
            }
            name = words[1]
            self.line = line
            var every: Duration?
            for word in words.dropFirst(2) {
                if word == "delete" {
                    deleteMissing = true
                } else if word.hasPrefix("every="), every == nil, let duration = DurationText.parse(String(word.dropFirst(6))), word.last?.isLetter == true {
                    guard duration >= SyncJobFile.minimumInterval else { throw SyncJobError("every= must be at least 1s") }
                    every = duration
                } else {
                    throw SyncJobError("'\(word.prefix(60))' is not every=DURATION (once, with a unit: 30s, 10m, 1h, 1d) or delete")
                }
            }
            guard let every else { throw SyncJobError("job \(name) has no every=DURATION") }
            self.every = every
        }

        mutating func add(_ words: [String], line: String) throws(SyncJobError) {
            switch words[0] {
            case "from":
                guard source == nil else { throw SyncJobError("a second `from` in job \(name)") }
                source = try Self.endpoint(words)
            case "to":
                guard destination == nil else { throw SyncJobError("a second `to` in job \(name)") }
                destination = try Self.endpoint(words)
            case "rule":
                let text = line.dropFirst(4).trimmingCharacters(in: .whitespacesAndNewlines)
                do {
                    rules.append(try SyncRule(parsing: text))
                } catch {
                    throw SyncJobError("rule: \(error.description)")
                }
            default:
                throw SyncJobError("'\(words[0].prefix(40))' is not sync, from, to or rule")
            }
        }

        /// `from|to URL [credentials=FILE] [ca=FILE]`.
        static func endpoint(_ words: [String]) throws(SyncJobError) -> SyncEndpoint {
            guard words.count >= 2, words[1].utf8.count <= 2048, let url = URLComponents(string: words[1]), ["http", "https"].contains(url.scheme),
                url.host?.isEmpty == false, url.query == nil, url.fragment == nil
            else {
                throw SyncJobError("expected `\(words[0]) http(s)://HOST[:PORT] [credentials=FILE] [ca=FILE]`")
            }
            // A password in the URL would reach logs, events and the console: logins go in files.
            guard url.user == nil, url.password == nil else {
                throw SyncJobError("a login in the URL is refused: put it in a file named by credentials=")
            }
            var endpoint = SyncEndpoint(url: words[1])
            for word in words.dropFirst(2) {
                if word.hasPrefix("credentials="), word.count > 12, endpoint.credentialsFile == nil {
                    endpoint.credentialsFile = String(word.dropFirst(12))
                } else if word.hasPrefix("ca="), word.count > 3, endpoint.caFile == nil {
                    endpoint.caFile = String(word.dropFirst(3))
                } else {
                    throw SyncJobError("'\(word.prefix(60))' is not credentials=FILE or ca=FILE (each at most once)")
                }
            }
            return endpoint
        }

        func job() throws(SyncJobError) -> SyncJob {
            guard let source else { throw SyncJobError("job \(name) has no `from URL` line") }
            guard let destination else { throw SyncJobError("job \(name) has no `to URL` line") }
            guard !rules.isEmpty else { throw SyncJobError("job \(name) has no `rule` line") }
            return SyncJob(name: name, every: every, deleteMissing: deleteMissing, source: source, destination: destination, rules: rules)
        }
    }
}

import Logging
import RegistryClient
import SpeedyCore
import Synchronization

/// The upstream registries an imageserver caches, and what it has in flight from them: the
/// manifests and blobs being fetched (each once, however many pulls wait for it) and when each
/// cached tag was last checked against its upstream.
///
/// Tag checks live in memory: an imageserver that restarts checks each tag once more, which
/// costs one `HEAD` to the upstream.
final class PullThroughCache: Sendable {
    /// One upstream and its client.
    struct Source: Sendable {
        var upstream: Upstream
        var client: RegistryClient
    }

    /// The most tag checks remembered; past it the oldest are forgotten (and checked again).
    static let maximumRememberedTags = 100_000

    let sources: [Source]
    /// Manifest fetches in flight, by local repository and reference.
    let manifests = SingleFlight<String, ManifestRecord>()
    /// A fill's identity: a blob filled into one repository.
    struct FillKey: Hashable, Sendable {
        var repository: String
        var digest: Digest
    }

    /// Blob fills being started: an entry lasts until the upstream answered the blob's head;
    /// ``fill(of:)`` finds the fill from then until it ends.
    let fillStarts = SingleFlight<FillKey, UpstreamBlobFill>()
    private let running = Mutex<[FillKey: UpstreamBlobFill]>([:])
    private let checked = Mutex<[String: ContinuousClock.Instant]>([:])

    /// A cache of `upstreams`.
    /// - Throws: ``RegistryClientError`` when an upstream's URL or CA file is unusable.
    init(upstreams: [Upstream]) throws(RegistryClientError) {
        var sources: [Source] = []
        for upstream in upstreams {
            sources.append(Source(upstream: upstream, client: try RegistryClient(baseURL: upstream.url, options: upstream.options)))
        }
        // The longest prefix wins: `hub/library` before `hub`.
        self.sources = sources.sorted { $0.upstream.prefix.count > $1.upstream.prefix.count }
    }

    /// The upstream of local repository `repository` and its name there; nil when none caches it.
    func source(for repository: String) -> (source: Source, remote: String)? {
        for source in sources {
            if let remote = source.upstream.remoteName(of: repository) { return (source, remote) }
        }
        return nil
    }

    /// Whether tag `tag` of `repository` was checked against its upstream less than `ttl` ago.
    func isFresh(_ tag: String, in repository: String, ttl: Duration) -> Bool {
        checked.withLock { checked in checked[repository + ":" + tag].map { ContinuousClock.now - $0 < ttl } ?? false }
    }

    /// Notes that tag `tag` of `repository` was checked (or the upstream could not be asked) now.
    func markChecked(_ tag: String, in repository: String) {
        checked.withLock { checked in
            if checked.count >= Self.maximumRememberedTags {
                // The older half goes at once, so this sort comes once per many thousand checks.
                let cutoff = checked.values.sorted()[checked.count / 2]
                checked = checked.filter { $0.value > cutoff }
            }
            checked[repository + ":" + tag] = .now
        }
    }

    /// The fill of `key` running now, if any.
    func fill(of key: FillKey) -> UpstreamBlobFill? {
        running.withLock { $0[key] }
    }

    /// Notes a fill that has started; it is found by ``fill(of:)`` until ``ended(_:)``.
    func started(_ fill: UpstreamBlobFill) {
        running.withLock { $0[fill.key] = fill }
    }

    /// Notes that a fill has ended.
    func ended(_ fill: UpstreamBlobFill) {
        running.withLock { running in
            if running[fill.key] === fill { running.removeValue(forKey: fill.key) }
        }
    }

    /// Closes the upstreams' connections.
    func shutdown() async {
        for source in sources { await source.client.shutdown() }
    }
}

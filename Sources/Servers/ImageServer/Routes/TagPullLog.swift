import Logging
import SpeedyCore
import Synchronization

/// The tag pulls this imageserver answered since it last told the metaserver: one entry per tag
/// however often it is pulled, sent as one batch every few seconds, so a pull costs no database
/// write (retention keeps tags pulled lately: docs/gc.md, "Retention").
///
/// Pulls not yet sent when the imageserver stops are lost: a tag's pull time may lag by one
/// interval, which retention's day-sized windows do not notice.
final class TagPullLog: Sendable {
    /// The most tags held between two sends; pulls of further tags wait for the next interval.
    static let maximumPending = 50_000

    private struct Key: Hashable {
        var repository: String
        var tag: String
    }

    private let pending = Mutex<[Key: Int64]>([:])

    init() {}

    /// Notes a pull of `tag` of `repository` now.
    func note(_ tag: String, in repository: String) {
        let now = currentTimeMillis()
        pending.withLock { pending in
            let key = Key(repository: repository, tag: tag)
            guard pending[key] != nil || pending.count < Self.maximumPending else { return }
            pending[key] = now
        }
    }

    /// Sends what was noted; what cannot be sent now is kept for the next call.
    func send(to meta: any MetadataStore, logger: Logger) async {
        let batch = pending.withLock { pending in
            defer { pending = [:] }
            return pending
        }
        guard !batch.isEmpty else { return }
        let pulls = batch.map { TagPull(repository: $0.key.repository, tag: $0.key.tag, pulledMs: $0.value) }
        for start in stride(from: 0, to: pulls.count, by: 5000) {
            let part = Array(pulls[start..<min(start + 5000, pulls.count)])
            do {
                try await meta.recordPulls(part)
            } catch {
                logger.warning("could not record \(part.count) tag pulls in the metaserver: \(error); trying again later")
                restore(part)
            }
        }
    }

    /// Puts pulls that could not be sent back, keeping the later time of each tag.
    private func restore(_ pulls: [TagPull]) {
        pending.withLock { pending in
            for pull in pulls {
                let key = Key(repository: pull.repository, tag: pull.tag)
                pending[key] = max(pending[key] ?? 0, pull.pulledMs)
            }
        }
    }
}

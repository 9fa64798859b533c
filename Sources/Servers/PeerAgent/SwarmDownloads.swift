import CoreMetrics
import HTTPTypes
import Logging
import SpeedyCore
import Synchronization

/// The blobs this agent is downloading now, one ``BlobDownload`` each: every pull of a blob on
/// the host follows the one download, and peers read the chunks it already has.
final class SwarmDownloads: Sendable {
    private let context: DownloadContext
    private let window: Int
    private let active = Mutex<[Digest: PartialBlob]>([:])

    /// Downloads with `window` chunk fetches each.
    init(context: DownloadContext, window: Int) {
        self.context = context
        self.window = window
    }

    /// The download of `digest` as `map` describes it: the one in progress, or a new one. Nil
    /// when no temporary file can be made, or the cache could never keep the blob (the caller
    /// then streams the chunks in order, uncached), or a download in progress has another layout.
    func join(_ map: ChunkMap, digest: Digest, name: String, credentials: HTTPFields) -> PartialBlob? {
        return active.withLock { active -> PartialBlob? in
            if let current = active[digest] {
                return current.map.size == map.size && current.count == map.chunks.count ? current : nil
            }
            // The download's room in the cache is reserved before its file exists.
            guard context.cache.reserve(map.size) else { return nil }
            let file: CacheTempFile
            do {
                file = try CacheTempFile(path: context.cache.temporaryPath(), reserved: map.size)
            } catch {
                context.cache.release(map.size)
                context.logger.warning("\(error); serving \(digest) without caching")
                context.metrics.cacheWriteFailures.increment()
                return nil
            }
            let partial = PartialBlob(digest: digest, map: map, file: file)
            let download = BlobDownload(partial: partial, name: name, credentials: credentials, context: context, window: window) {
                [weak self] in self?.finished(partial)
            }
            active[digest] = partial
            // Its own task: it serves every follower and peer, and the cache, beyond any one request.
            Task { await download.run() }
            return partial
        }
    }

    /// The download of `digest` in progress, if any.
    func partial(of digest: Digest) -> PartialBlob? { active.withLock { $0[digest] } }

    /// Every download in progress.
    func inProgress() -> [PartialBlob] { active.withLock { Array($0.values) } }

    private func finished(_ partial: PartialBlob) {
        active.withLock { active in
            if active[partial.digest] === partial { active[partial.digest] = nil }
        }
    }
}

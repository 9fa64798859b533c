import Foundation
import Logging
import SpeedyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent's disk cache of whole blobs, each in a file named by its digest
/// (`DIR/blobs/sha256/<hex>`), bounded to a number of bytes: when a new blob would pass the
/// bound, the least recently used blobs are deleted first. Use is the file's modification time,
/// touched on every hit, so the order survives a restart.
///
/// A blob enters only through ``commit(_:digest:)``, after its digest was checked; downloads in
/// progress live in `DIR/tmp/` and whatever is left there at start (a crash) is deleted.
final class BlobCache: Sendable {
    /// What the cache holds, for `/metrics`.
    struct Usage: Sendable {
        var bytes: UInt64
        var blobs: Int
        var limit: UInt64
    }

    /// A cached blob.
    struct Entry: Sendable {
        var path: String
        var size: UInt64
    }

    private struct State {
        var entries: [Digest: (size: UInt64, lastUse: Double)] = [:]
        var bytes: UInt64 = 0
    }

    let directory: String
    /// The most bytes kept.
    let limit: UInt64
    private let state = Mutex(State())
    private let logger: Logger

    /// Opens the cache in `directory` (made if missing): deletes leftover downloads, indexes the
    /// blobs there, and trims them to `limit`.
    init(directory: String, limit: UInt64, logger: Logger) throws(PeerError) {
        self.directory = directory
        self.limit = limit
        self.logger = logger
        let files = FileManager.default
        do {
            // This user's alone: a blob is served only after the registry allows the client,
            // so no other local user may read the cache from the disk.
            let owner: [FileAttributeKey: Any] = [.posixPermissions: 0o700]
            try files.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: owner)
            try files.setAttributes(owner, ofItemAtPath: directory)
            try files.createDirectory(atPath: directory + "/blobs/sha256", withIntermediateDirectories: true, attributes: owner)
            try files.createDirectory(atPath: directory + "/tmp", withIntermediateDirectories: true, attributes: owner)
            for leftover in try files.contentsOfDirectory(atPath: directory + "/tmp") {
                try files.removeItem(atPath: directory + "/tmp/" + leftover)
            }
        } catch {
            throw .cache("cannot prepare the cache in \(directory): \(error)")
        }
        scan()
        evict(keeping: nil)
    }

    /// Indexes the blob files already on disk, by their names, sizes and modification times.
    private func scan() {
        let folder = directory + "/blobs/sha256"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        var found = State()
        for name in names {
            var info = stat()
            guard let digest = Digest(parsing: "sha256:" + name), stat(folder + "/" + name, &info) == 0 else {
                logger.warning("cache: ignoring \(folder)/\(name), not a blob")
                continue
            }
            let size = UInt64(max(0, info.st_size))
            found.entries[digest] = (size, Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
            found.bytes += size
        }
        state.withLock { $0 = found }
        logger.notice("cache: \(found.entries.count) blobs, \(ByteSize.format(found.bytes)) of \(ByteSize.format(limit)) in \(directory)")
    }

    /// The file of `digest`.
    func path(of digest: Digest) -> String { directory + "/blobs/\(digest.algorithm.rawValue)/\(digest.hex)" }

    /// The cached blob `digest`, marked used now; nil when the cache does not have it.
    func lookup(_ digest: Digest) -> Entry? {
        let now = Self.now()
        let size: UInt64? = state.withLock { state in
            guard var entry = state.entries[digest] else { return nil }
            entry.lastUse = now
            state.entries[digest] = entry
            return entry.size
        }
        guard let size else { return nil }
        // The file's time is the order after a restart.
        _ = utimes(path(of: digest), nil)
        return Entry(path: path(of: digest), size: size)
    }

    /// Whether a blob of `size` bytes may be cached at all.
    func accepts(size: UInt64) -> Bool { size <= limit }

    /// A new, unique path for a download in progress.
    func temporaryPath() -> String { directory + "/tmp/\(UUID().uuidString).partial" }

    /// Moves the verified download at `temporary` into the cache as `digest`, then deletes the
    /// least recently used other blobs until the cache fits its limit.
    func commit(_ temporary: String, digest: Digest, size: UInt64) {
        guard rename(temporary, path(of: digest)) == 0 else {
            logger.warning("cache: cannot move \(temporary) to \(path(of: digest)): errno \(errno)")
            unlink(temporary)
            return
        }
        let now = Self.now()
        state.withLock { state in
            if let old = state.entries[digest] { state.bytes -= old.size }
            state.entries[digest] = (size, now)
            state.bytes += size
        }
        evict(keeping: digest)
    }

    /// Drops `digest` (its file failed its digest when read back).
    func remove(_ digest: Digest) {
        let removed = state.withLock { state in
            guard let old = state.entries.removeValue(forKey: digest) else { return false }
            state.bytes -= old.size
            return true
        }
        if removed { unlink(path(of: digest)) }
    }

    /// Deletes least recently used blobs (never `keeping`) until the cache fits its limit.
    private func evict(keeping: Digest?) {
        let victims: [Digest] = state.withLock { state in
            var victims: [Digest] = []
            let order = state.entries.filter { $0.key != keeping }.sorted { $0.value.lastUse < $1.value.lastUse }
            var index = 0
            while state.bytes > limit, index < order.count {
                let (digest, entry) = order[index]
                state.entries[digest] = nil
                state.bytes -= entry.size
                victims.append(digest)
                index += 1
            }
            return victims
        }
        for digest in victims {
            unlink(path(of: digest))
            logger.info("cache: evicted \(digest)")
        }
    }

    /// What the cache holds now.
    func usage() -> Usage {
        state.withLock { Usage(bytes: $0.bytes, blobs: $0.entries.count, limit: limit) }
    }

    private static func now() -> Double { Date().timeIntervalSince1970 }
}

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
/// A blob enters only through ``commit(_:digest:size:reserved:)``, after its digest was checked;
/// downloads in progress live in `DIR/tmp/` and whatever is left there at start (a crash) is
/// deleted. Downloads count toward the bound while they run: see ``reserve(_:)``.
///
/// Every change of the index and of the files in `blobs/` (rename in, unlink out) happens under
/// one lock, so an eviction never deletes a file committed or opened after it chose its victims.
final class BlobCache: Sendable {
    /// What the cache holds, for `/metrics`.
    struct Usage: Sendable {
        /// Bytes of the blobs in the cache.
        var bytes: UInt64
        /// How many blobs it holds.
        var blobs: Int
        /// The most bytes it keeps (``BlobCache/limit``).
        var limit: UInt64
        /// Bytes reserved by downloads in progress (``BlobCache/reserve(_:)``).
        var reserved: UInt64 = 0
    }

    /// A cached blob, by path (``lookup(_:)``).
    struct Entry: Sendable {
        /// The blob's file.
        var path: String
        /// Its length in bytes.
        var size: UInt64
    }

    /// A cached blob's file, open for reading (``openForReading(_:)``): it stays readable even if
    /// the blob is evicted or replaced meanwhile. The descriptor closes when the last holder lets
    /// go of it.
    final class OpenBlob: Sendable {
        /// The read-only descriptor.
        let fd: Int32
        /// The blob's length in bytes.
        let size: UInt64
        /// The path it was opened at, for messages.
        let path: String
        /// The file's device and inode, to tell it from a file committed later under its name.
        let identity: (device: UInt64, inode: UInt64)

        /// Takes ownership of `fd`, a file of `size` bytes opened at `path`.
        init(fd: Int32, size: UInt64, path: String) {
            var info = stat()
            self.identity = fstat(fd, &info) == 0 ? (UInt64(info.st_dev), UInt64(info.st_ino)) : (0, 0)
            self.fd = fd
            self.size = size
            self.path = path
        }

        deinit { close(fd) }
    }

    private struct State {
        var entries: [Digest: (size: UInt64, lastUse: Double)] = [:]
        /// Bytes of the entries.
        var bytes: UInt64 = 0
        /// Bytes reserved by downloads in progress.
        var reserved: UInt64 = 0
    }

    /// The cache's directory.
    let directory: String
    /// The most bytes kept, blobs and reservations together.
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
        state.withLock { evict(&$0, keeping: nil) }
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

    /// The cached blob `digest`, marked used now; nil when the cache does not have it. The file
    /// may be evicted before the caller opens it: prefer ``openForReading(_:)``.
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

    /// The cached blob `digest`, opened for reading and marked used now; nil when the cache does
    /// not have it. Open before answering 200, so a blob evicted a moment later is still served
    /// whole. A file missing or of the wrong length drops the entry (and returns nil).
    func openForReading(_ digest: Digest) -> OpenBlob? {
        let path = path(of: digest)
        let now = Self.now()
        return state.withLock { state -> OpenBlob? in
            guard var entry = state.entries[digest] else { return nil }
            // Opened under the lock: no eviction can unlink it between the check and the open.
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let failure = errno
                logger.warning("cache: cannot open \(path): errno \(failure)\(failure == ENOENT ? "; dropped" : "")")
                // Deleted by hand: forget it. Any other failure (no descriptors left) may pass.
                if failure == ENOENT { drop(&state, digest, unlinking: false) }
                return nil
            }
            var info = stat()
            guard fstat(fd, &info) == 0, UInt64(max(0, info.st_size)) == entry.size else {
                close(fd)
                logger.warning("cache: \(path) is not \(entry.size) bytes long; dropped")
                drop(&state, digest, unlinking: true)
                return nil
            }
            entry.lastUse = now
            state.entries[digest] = entry
            // The file's time is the order after a restart.
            _ = futimens(fd, nil)
            return OpenBlob(fd: fd, size: entry.size, path: path)
        }
    }

    /// Whether a blob of `size` bytes may be cached at all.
    func accepts(size: UInt64) -> Bool { size <= limit }

    /// A new, unique path for a download in progress.
    func temporaryPath() -> String { directory + "/tmp/\(UUID().uuidString).partial" }
}

extension BlobCache {
    /// Reserves room for a download of `bytes` about to start, evicting least recently used
    /// blobs to make it; false (nothing reserved) when `bytes` could never fit (more than
    /// ``limit``). The contract: reserve before creating the temporary file, then always
    /// either ``commit(_:digest:size:reserved:)`` with the same `reserved`, or ``release(_:)``.
    func reserve(_ bytes: UInt64) -> Bool {
        guard bytes <= limit else { return false }
        state.withLock { state in
            state.reserved += bytes
            evict(&state, keeping: nil)
        }
        return true
    }

    /// Gives back a reservation of ``reserve(_:)`` whose download did not enter the cache.
    func release(_ bytes: UInt64) {
        state.withLock { $0.reserved -= min($0.reserved, bytes) }
    }

    /// Moves the verified download at `temporary` into the cache as `digest`, turning its
    /// reservation of `reserved` bytes (``reserve(_:)``, 0 for none) into the blob, then deletes
    /// the least recently used other blobs until the cache fits its limit. The reservation is
    /// spent even when the move fails (the temporary file is deleted then).
    func commit(_ temporary: String, digest: Digest, size: UInt64, reserved: UInt64 = 0) {
        let target = path(of: digest)
        let now = Self.now()
        state.withLock { state in
            state.reserved -= min(state.reserved, reserved)
            // Renamed under the lock: an eviction running now cannot unlink the new file.
            guard rename(temporary, target) == 0 else {
                logger.warning("cache: cannot move \(temporary) to \(target): errno \(errno)")
                unlink(temporary)
                return
            }
            // The file's time is the order after a restart: now, not when its bytes were written.
            _ = utimes(target, nil)
            if let old = state.entries[digest] { state.bytes -= old.size }
            state.entries[digest] = (size, now)
            state.bytes += size
            evict(&state, keeping: digest)
        }
    }

    /// Drops `digest` (its file failed its digest or its length when read back). With `file`,
    /// only if the cache still holds that very file: a good copy committed since is kept.
    func remove(_ digest: Digest, file: OpenBlob? = nil) {
        state.withLock { state in
            if let file {
                var info = stat()
                guard stat(path(of: digest), &info) == 0, (UInt64(info.st_dev), UInt64(info.st_ino)) == file.identity else { return }
            }
            drop(&state, digest, unlinking: true)
        }
    }

    /// What the cache holds now.
    func usage() -> Usage {
        state.withLock { Usage(bytes: $0.bytes, blobs: $0.entries.count, limit: limit, reserved: $0.reserved) }
    }

    /// Forgets `digest` and, with `unlinking`, deletes its file; under the lock.
    private func drop(_ state: inout State, _ digest: Digest, unlinking: Bool) {
        guard let old = state.entries.removeValue(forKey: digest) else { return }
        state.bytes -= old.size
        if unlinking { unlink(path(of: digest)) }
    }

    /// Deletes least recently used blobs (never `keeping`) until blobs and reservations fit the
    /// limit. Runs under the lock, unlinks included, so what it deletes is what it chose.
    private func evict(_ state: inout State, keeping: Digest?) {
        guard state.bytes + state.reserved > limit else { return }
        let order = state.entries.filter { $0.key != keeping }.sorted { $0.value.lastUse < $1.value.lastUse }
        for (digest, _) in order {
            guard state.bytes + state.reserved > limit else { break }
            drop(&state, digest, unlinking: true)
            logger.info("cache: evicted \(digest)")
        }
    }

    fileprivate static func now() -> Double { Date().timeIntervalSince1970 }
}

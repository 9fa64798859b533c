import NIOCore
import NIOPosix
import SpeedyCore

#if canImport(Glibc)
import Glibc
#endif

/// A download in progress in the cache's `tmp/` folder. Chunks are written at their offsets in
/// whatever order they arrive, and read back by the clients and peers that follow the download;
/// every system call runs on NIO's thread pool, never on a request's executor. The file ends
/// moved into the cache (``finish()`` then ``BlobCache/commit(_:digest:size:)``) or deleted
/// (``discard(from:)``); the descriptor stays open until the last reader lets go of it.
final class CacheTempFile: Sendable {
    let path: String
    /// The room reserved for it in the cache (``BlobCache/reserve(_:)``): given to
    /// ``BlobCache/commit(_:digest:size:reserved:)``, or released by ``discard(from:)``.
    let reserved: UInt64
    private let fd: Int32

    /// Creates the file (it must not exist), readable by this user alone: what the cache holds
    /// is served only after the registry allows it, so no other local user may read it directly.
    init(path: String, reserved: UInt64) throws(PeerError) {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cache("cannot create \(path): errno \(errno)") }
        self.path = path
        self.reserved = reserved
        self.fd = fd
    }

    deinit { close(fd) }

    /// Writes `piece` at byte `offset`.
    func write(_ piece: ByteBuffer, at offset: UInt64) async throws(PeerError) {
        let fd = self.fd
        let path = self.path
        try await Self.onPool(path) {
            try piece.withUnsafeReadableBytes { bytes in
                var done = 0
                while done < bytes.count {
                    let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
                    if written < 0, errno == EINTR { continue }
                    guard written > 0 else { throw PeerError.cache("cannot write \(path): errno \(errno)") }
                    done += written
                }
            }
        }
    }

    /// Reads `count` bytes at `offset`; throws when the file ends before them.
    func read(at offset: UInt64, count: Int) async throws(PeerError) -> ByteBuffer {
        let fd = self.fd
        let path = self.path
        return try await Self.onPool(path) {
            try Self.pread(fd, path: path, at: offset, count: count)
        }
    }

    /// Flushes the file to disk; the caller then moves it into the cache.
    func finish() async throws(PeerError) {
        let fd = self.fd
        try await Self.onPool(path) {
            guard fsync(fd) == 0 else { throw PeerError.cache("fsync failed: errno \(errno)") }
        }
    }

    /// Deletes the file and gives its reservation back to `cache` (the download failed, did not
    /// verify, or the cache could not keep it); readers still holding it keep reading what it had.
    func discard(from cache: BlobCache) {
        unlink(path)
        cache.release(reserved)
    }

    /// Makes the file durable and moves it into `cache` as `digest`, with its reservation.
    func commit(to cache: BlobCache, digest: Digest, size: UInt64) async throws(PeerError) {
        do {
            try await finish()
        } catch {
            discard(from: cache)
            throw error
        }
        cache.commit(path, digest: digest, size: size, reserved: reserved)
    }

    /// `count` bytes at `offset` of `fd`, read in full (a short file throws).
    static func pread(_ fd: Int32, path: String, at offset: UInt64, count: Int) throws(PeerError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
            var done = 0
            while done < count {
                let got = Glibc.pread(fd, bytes.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if got < 0, errno == EINTR { continue }
                guard got > 0 else {
                    failure = got < 0 ? errno : -1
                    break
                }
                done += got
            }
            return done
        }
        guard failure == 0 else {
            throw .cache(failure < 0 ? "\(path) ends before byte \(offset + UInt64(count))" : "cannot read \(path): errno \(failure)")
        }
        return buffer
    }

    private static func onPool<T: Sendable>(_ path: String, _ work: @escaping @Sendable () throws -> T) async throws(PeerError) -> T {
        do {
            return try await NIOThreadPool.singleton.runIfActive(work)
        } catch let error as PeerError {
            throw error
        } catch {
            throw .cache("\(path): \(error)")
        }
    }
}

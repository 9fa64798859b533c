import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A download in progress in the cache's `tmp/` folder: pieces are appended on NIO's thread
/// pool (never blocking a request's executor), then the file is either made durable and handed
/// to the cache, or deleted.
final class CacheTempFile: Sendable {
    let path: String
    private let fd: Int32

    /// Creates the file (it must not exist), readable by this user alone: what the cache holds
    /// is served only after the registry allows it, so no other local user may read it directly.
    init(path: String) throws(PeerError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cache("cannot create \(path): errno \(errno)") }
        self.path = path
        self.fd = fd
    }

    /// Appends `piece`.
    func append(_ piece: ByteBuffer) async throws(PeerError) {
        let fd = self.fd
        let path = self.path
        do {
            try await NIOThreadPool.singleton.runIfActive {
                try piece.withUnsafeReadableBytes { bytes in
                    var offset = 0
                    while offset < bytes.count {
                        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                        if written < 0, errno == EINTR { continue }
                        guard written > 0 else { throw PeerError.cache("cannot write \(path): errno \(errno)") }
                        offset += written
                    }
                }
            }
        } catch let error as PeerError {
            throw error
        } catch {
            throw .cache("cannot write \(path): \(error)")
        }
    }

    /// Flushes the file to disk and closes it; the caller then moves it into the cache.
    func finish() async throws(PeerError) {
        let fd = self.fd
        do {
            try await NIOThreadPool.singleton.runIfActive {
                guard fsync(fd) == 0 else { throw PeerError.cache("fsync failed: errno \(errno)") }
            }
        } catch let error as PeerError {
            throw error
        } catch {
            throw .cache("cannot flush \(path): \(error)")
        }
        close(fd)
    }

    /// Closes and deletes the file (the download failed or did not verify).
    func discard() {
        close(fd)
        unlink(path)
    }
}

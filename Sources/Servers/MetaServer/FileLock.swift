#if canImport(Glibc)
import Glibc
#endif

/// An exclusive advisory lock on a file (`flock`), held across processes for the length of a call.
enum FileLock {
    /// The lock file could not be opened or locked.
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs `body` while holding an exclusive lock on `path` (created when missing), waiting for
    /// any other holder first.
    static func holding<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        while flock(fd, LOCK_EX) != 0 {
            guard errno == EINTR else { throw Failure(description: "cannot lock \(path): \(String(cString: strerror(errno)))") }
        }
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}

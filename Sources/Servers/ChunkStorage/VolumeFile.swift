import CSpeedy
import SpeedyCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One large preallocated file holding many chunk records back to back (see ``RecordHeader``).
///
/// Thin and blocking by design: it wraps the system calls and turns failures into
/// ``ChunkStoreError/io(operation:errno:)``. The store decides where to write and when to sync.
public final class VolumeFile: Sendable {
    /// The volume's number, which is also in its file name.
    public let id: UInt32
    /// Path of the file.
    public let path: String
    /// Size the file was preallocated to; records never cross it.
    public let size: Int
    private let fd: Int32

    /// The file name for volume `id`: `volume-000001.dat`.
    public static func fileName(id: UInt32) -> String {
        let digits = String(id)
        return "volume-" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + ".dat"
    }

    /// Parses a volume id out of a file name made by ``fileName(id:)``.
    public static func id(fromFileName name: String) -> UInt32? {
        guard name.hasPrefix("volume-"), name.hasSuffix(".dat") else { return nil }
        return UInt32(name.dropFirst(7).dropLast(4))
    }

    /// Opens an existing volume.
    public init(openingAt path: String, id: UInt32) throws(ChunkStoreError) {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw .io(operation: "open \(path)", errno: errno) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw .io(operation: "fstat \(path)", errno: e)
        }
        self.fd = fd
        self.id = id
        self.path = path
        self.size = Int(st.st_size)
    }

    /// Creates a new volume of `size` bytes, reserving the space on disk, and makes its existence durable.
    public init(creatingAt path: String, id: UInt32, size: Int) throws(ChunkStoreError) {
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "create \(path)", errno: errno) }
        // posix_fallocate reserves real blocks, so a full disk shows up now, not mid-write.
        let rc = posix_fallocate(fd, 0, off_t(size))
        if rc != 0 {
            close(fd)
            unlink(path)
            throw .io(operation: "fallocate \(path)", errno: rc)
        }
        guard fsync(fd) == 0 else {
            let e = errno
            close(fd)
            throw .io(operation: "fsync \(path)", errno: e)
        }
        self.fd = fd
        self.id = id
        self.path = path
        self.size = size
        try Self.syncDirectory(containing: path)
    }

    deinit { close(fd) }

    /// Writes all of `buffers` contiguously at `offset`.
    public func write(_ buffers: [UnsafeRawBufferPointer], at offset: Int) throws(ChunkStoreError) {
        var position = offset
        for buffer in buffers where buffer.count > 0 {
            var done = 0
            while done < buffer.count {
                let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(position + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io(operation: "pwrite \(path)", errno: errno)
                }
                done += n
            }
            position += buffer.count
        }
    }

    /// Reads exactly `into.count` bytes at `offset`; fewer means the file ended, an I/O error.
    public func read(into: UnsafeMutableRawBufferPointer, at offset: Int) throws(ChunkStoreError) {
        var done = 0
        while done < into.count {
            let n = pread(fd, into.baseAddress! + done, into.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pread \(path)", errno: errno)
            }
            if n == 0 { throw .io(operation: "pread \(path) past end", errno: EIO) }
            done += n
        }
    }

    /// Makes every completed write durable (fdatasync: the size never changes, so metadata need not).
    public func sync() throws(ChunkStoreError) {
        guard fdatasync(fd) == 0 else { throw .io(operation: "fdatasync \(path)", errno: errno) }
    }

    /// Zeroes `[offset, offset + length)` so stale bytes there can never be mistaken for records.
    public func zero(from offset: Int, length: Int) throws(ChunkStoreError) {
        let length = min(length, size - offset)
        guard length > 0 else { return }
        // FALLOC_FL_ZERO_RANGE, then PUNCH_HOLE|KEEP_SIZE (re-reserved after), then plain writes.
        if speedy_fallocate(fd, 0x10, off_t(offset), off_t(length)) != 0 {
            if speedy_fallocate(fd, 0x02 | 0x01, off_t(offset), off_t(length)) == 0 {
                _ = posix_fallocate(fd, off_t(offset), off_t(length))
            } else {
                let block = [UInt8](repeating: 0, count: 1 << 20)
                var at = offset
                while at < offset + length {
                    let n = min(block.count, offset + length - at)
                    try block.withUnsafeBytes { b in
                        Result { () throws(ChunkStoreError) in try write([UnsafeRawBufferPointer(rebasing: b[0..<n])], at: at) }
                    }.get()
                    at += n
                }
            }
        }
        try sync()
    }

    /// fsyncs the directory holding `path`, so a newly created or renamed file survives a crash.
    public static func syncDirectory(containing path: String) throws(ChunkStoreError) {
        let dir = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        let dfd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw .io(operation: "open \(dir)", errno: errno) }
        defer { close(dfd) }
        guard fsync(dfd) == 0 else { throw .io(operation: "fsync \(dir)", errno: errno) }
    }
}

import CSpeedy
import SpeedyCore
import Synchronization

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
    /// The same file opened with O_DIRECT for the block-aligned middle of large writes: opened at
    /// the first such write (so sealed volumes hold one descriptor, not two), -1 where the
    /// filesystem refuses it (tmpfs). See ``write(_:at:)``.
    private let directFD = Mutex<Int32>(VolumeFile.notOpened)
    private static let notOpened: Int32 = -2
    /// The whole file mapped read-only and never touched: what ``uncachedRuns(offset:length:)``
    /// asks `mincore` about. Mapped at the first such question; nil where mapping failed.
    private let residencyMap = Mutex<Mapping?>(nil)
    private struct Mapping: @unchecked Sendable {
        let base: UnsafeMutableRawPointer
        let length: Int
    }
    private static let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))

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

    deinit {
        if let mapping = residencyMap.withLock({ $0 }) { munmap(mapping.base, mapping.length) }
        close(fd)
        let direct = directFD.withLock { $0 }
        if direct >= 0 { close(direct) }
    }

    /// A new descriptor of the file (`dup`), for a reader that outlives this object's use: it
    /// keeps the bytes readable after the file is unlinked. The caller closes it; -1 on failure.
    public func duplicateDescriptor() -> Int32 {
        fcntl(fd, F_DUPFD_CLOEXEC, 0)
    }

    /// Brings bytes `offset..<offset+length` into the page cache and returns once they are there,
    /// so that a `sendfile` of them from an event loop does no disk read. Blocking: call it on a
    /// reader thread. Pages already cached cost one `mincore`; the others are asked for at once
    /// (`POSIX_FADV_WILLNEED`) and waited for by sending them to `/dev/null` (`sendfile`: the
    /// kernel reads them into the cache and copies nothing; touching a mapping instead would turn a
    /// disk error into a `SIGBUS`, and `pread` would copy every byte into this process).
    ///
    /// - Parameter uncached: what ``uncachedRuns(offset:length:)`` answered for this range just
    ///   before, if the caller asked; else it is asked here.
    /// - Returns: false when a read failed (the disk error is for a checked read to find and report).
    public func makeResident(offset: Int, length: Int, uncached: [Range<Int>]? = nil) -> Bool {
        guard length > 0 else { return true }
        let missing = uncached ?? uncachedRuns(offset: offset, length: length)
        guard !missing.isEmpty else { return true }
        guard Self.devNull >= 0 else { return false }
        _ = posix_fadvise(fd, off_t(offset), off_t(length), POSIX_FADV_WILLNEED)
        for run in missing {
            // Only the asked-for bytes: a widened last page may lie past the end of the file.
            var at = off_t(max(run.lowerBound, offset))
            let end = off_t(min(run.upperBound, offset + length))
            while at < end {
                let n = sendfile(Self.devNull, fd, &at, Int(end - at))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
            }
        }
        return true
    }

    /// Where ``makeResident(offset:length:)`` sends the pages it reads in.
    private static let devNull = open("/dev/null", O_WRONLY | O_CLOEXEC)

    /// The byte ranges of `offset..<offset+length` (widened to whole pages) not in the page cache,
    /// by `mincore` on a mapping of the file that is never touched (made once per volume, so a
    /// question costs one system call); the whole range when that cannot tell. Does not block.
    public func uncachedRuns(offset: Int, length: Int) -> [Range<Int>] {
        let page = Self.pageSize
        let start = offset / page * page
        let end = (offset + length + page - 1) / page * page
        guard let mapping = mapping(), end <= mapping.length else { return [offset..<(offset + length)] }
        var resident = [UInt8](repeating: 0, count: (end - start) / page)
        guard resident.withUnsafeMutableBufferPointer({ mincore(mapping.base + start, end - start, $0.baseAddress) }) == 0 else {
            return [offset..<(offset + length)]
        }
        var runs: [Range<Int>] = []
        for (index, flags) in resident.enumerated() where flags & 1 == 0 {
            let pageStart = start + index * page
            if let last = runs.last, last.upperBound == pageStart {
                runs[runs.count - 1] = last.lowerBound..<(pageStart + page)
            } else {
                runs.append(pageStart..<(pageStart + page))
            }
        }
        return runs
    }

    /// The read-only mapping of the whole file (whole pages), made now if it was not yet.
    private func mapping() -> Mapping? {
        residencyMap.withLock { mapping in
            if mapping == nil {
                let length = (size + Self.pageSize - 1) / Self.pageSize * Self.pageSize
                if let base = mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0), base != MAP_FAILED {
                    mapping = Mapping(base: base, length: length)
                }
            }
            return mapping
        }
    }

    /// The O_DIRECT descriptor, opened now if it was not yet; -1 when there is none.
    private func directDescriptor() -> Int32 {
        directFD.withLock { fd in
            if fd == Self.notOpened { fd = max(-1, open(path, O_WRONLY | O_CLOEXEC | speedy_o_direct())) }
            return fd
        }
    }

    /// Closes the O_DIRECT descriptor of a volume that takes no more writes (it is sealed).
    public func endDirectWrites() {
        directFD.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = Self.notOpened
        }
    }

    /// Block size the O_DIRECT part of a write is aligned to (offset, length and memory).
    static let directAlignment = 4096
    /// Writes shorter than this go through the page cache whole.
    static let directMinimum = 64 << 10

    /// Writes all of `buffers` contiguously at `offset`.
    ///
    /// A buffered write costs this machine's kernel about 3.7 CPU seconds per GB (copying into the
    /// page cache, then writing it back), an O_DIRECT one about 0.1. So the block-aligned middle of
    /// a large write goes with O_DIRECT: straight from the caller's buffer when that buffer's
    /// bytes sit at the same place within a block in memory as in the file (the store places
    /// large records so, with fillers), else through an aligned staging buffer. The unaligned
    /// head and tail, and small writes, go through the page cache. The ranges never share a page,
    /// and the caller's fdatasync covers both kinds.
    public func write(_ buffers: [UnsafeRawBufferPointer], at offset: Int) throws(ChunkStoreError) {
        let total = buffers.reduce(0) { $0 + $1.count }
        guard let plan = DirectPlan(buffers, at: offset), directDescriptor() >= 0 else {
            try writeBuffered(buffers, range: 0..<total, at: offset)
            return
        }
        try writeBuffered(buffers, range: 0..<plan.range.lowerBound, at: offset)
        do {
            if let memory = plan.inPlace {
                try writeDirect(memory, at: offset + plan.range.lowerBound)
            } else {
                try writeStaged(buffers, range: plan.range, at: offset)
            }
        } catch let error {
            guard case .io(_, let code) = error, code == EINVAL else { throw error }
            // The filesystem took the open but not the write: use the page cache from now on.
            directFD.withLock {
                if $0 >= 0 { close($0) }
                $0 = -1
            }
            try writeBuffered(buffers, range: plan.range, at: offset)
        }
        try writeBuffered(buffers, range: plan.range.upperBound..<total, at: offset)
    }

    /// The part of a write that goes with O_DIRECT: block-aligned in the file, and taken from the
    /// caller's memory when one buffer holds all of it at block-aligned addresses.
    struct DirectPlan {
        /// The range, in the concatenation of the buffers.
        var range: Range<Int>
        /// The bytes of `range` in the caller's memory, when they can be written from there.
        var inPlace: UnsafeRawBufferPointer?

        /// nil when the write has too few whole blocks to be worth it.
        init?(_ buffers: [UnsafeRawBufferPointer], at offset: Int) {
            let a = VolumeFile.directAlignment
            var position = 0
            for buffer in buffers {
                let start = (offset + position + a - 1) / a * a - offset
                let end = (offset + position + buffer.count) / a * a - offset
                if end - start >= VolumeFile.directMinimum, let base = buffer.baseAddress,
                    UInt(bitPattern: base + (start - position)) % UInt(a) == 0
                {
                    range = start..<end
                    inPlace = UnsafeRawBufferPointer(start: base + (start - position), count: end - start)
                    return
                }
                position += buffer.count
            }
            let start = (offset + a - 1) / a * a - offset
            let end = (offset + position) / a * a - offset
            guard end - start >= VolumeFile.directMinimum else { return nil }
            range = start..<end
            inPlace = nil
        }
    }

    /// Writes bytes `range` of the concatenation of `buffers` at `base + range.lowerBound`.
    private func writeBuffered(_ buffers: [UnsafeRawBufferPointer], range: Range<Int>, at base: Int) throws(ChunkStoreError) {
        try Self.forEachSegment(of: buffers, in: range) { (segment, position) throws(ChunkStoreError) in
            var done = 0
            while done < segment.count {
                let n = pwrite(fd, segment.baseAddress! + done, segment.count - done, off_t(base + position + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io(operation: "pwrite \(path)", errno: errno)
                }
                done += n
            }
        }
    }

    /// Writes bytes `range` (block-aligned in the file) with O_DIRECT, through an aligned buffer.
    private func writeStaged(_ buffers: [UnsafeRawBufferPointer], range: Range<Int>, at base: Int) throws(ChunkStoreError) {
        try DirectWriteBuffer.shared.withBuffer { (staging) throws(ChunkStoreError) in
            var start = range.lowerBound
            while start < range.upperBound {
                let end = min(range.upperBound, start + staging.count)
                try Self.forEachSegment(of: buffers, in: start..<end) { (segment, position) throws(ChunkStoreError) in
                    (staging.baseAddress! + (position - start)).copyMemory(from: segment.baseAddress!, byteCount: segment.count)
                }
                try writeDirect(UnsafeRawBufferPointer(rebasing: staging[0..<(end - start)]), at: base + start)
                start = end
            }
        }
    }

    /// Writes `bytes` (block-aligned in memory, in length and at `offset`) with O_DIRECT.
    private func writeDirect(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(ChunkStoreError) {
        var done = 0
        while done < bytes.count {
            let fd = directFD.withLock { $0 }
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "pwrite (O_DIRECT) \(path)", errno: errno)
            }
            // A short direct write ends on a block boundary; the rest follows.
            done += n
        }
    }

    /// Calls `body` with each contiguous piece of bytes `range` of the concatenation of
    /// `buffers`, and the piece's position in that concatenation.
    private static func forEachSegment(
        of buffers: [UnsafeRawBufferPointer], in range: Range<Int>, _ body: (UnsafeRawBufferPointer, Int) throws(ChunkStoreError) -> Void
    ) throws(ChunkStoreError) {
        var position = 0
        for buffer in buffers {
            let lower = max(range.lowerBound, position), upper = min(range.upperBound, position + buffer.count)
            if lower < upper {
                try body(UnsafeRawBufferPointer(rebasing: buffer[(lower - position)..<(upper - position)]), lower)
            }
            position += buffer.count
            if position >= range.upperBound { break }
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
        // A hole is punched only where the filesystem could fill it again: on a full one (tmpfs
        // has no ZERO_RANGE) the range would stay unreserved and later writes there hit ENOSPC.
        if speedy_fallocate(fd, 0x10, off_t(offset), off_t(length)) != 0 {
            if hasRoom(for: length), speedy_fallocate(fd, 0x02 | 0x01, off_t(offset), off_t(length)) == 0 {
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

    /// Whether the filesystem has `bytes` free besides what this file holds (fstatvfs).
    private func hasRoom(for bytes: Int) -> Bool {
        var fs = statvfs()
        guard fstatvfs(fd, &fs) == 0 else { return false }
        return UInt64(fs.f_bavail) * UInt64(fs.f_frsize) >= UInt64(bytes)
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

/// The aligned buffer O_DIRECT writes go through: one per process, as a chunkserver's writes
/// come from its single flush thread; allocated once, so its pages are not faulted in again for
/// every write.
final class DirectWriteBuffer: Sendable {
    static let shared = DirectWriteBuffer(size: 1 << 20)

    private struct Storage: @unchecked Sendable {
        let pointer: UnsafeMutableRawPointer
    }

    private let storage: Mutex<Storage>
    private let size: Int

    private init(size: Int) {
        var pointer: UnsafeMutableRawPointer?
        precondition(posix_memalign(&pointer, VolumeFile.directAlignment, size) == 0, "cannot allocate the O_DIRECT buffer")
        self.storage = Mutex(Storage(pointer: pointer!))
        self.size = size
    }

    /// Runs `body` with the buffer, one caller at a time.
    func withBuffer<E: Error>(_ body: (UnsafeMutableRawBufferPointer) throws(E) -> Void) throws(E) {
        let size = self.size
        try storage.withLock { (storage: inout Storage) throws(E) in
            try body(UnsafeMutableRawBufferPointer(start: storage.pointer, count: size))
        }
    }
}

import SpeedyCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A saved copy of the index, so a restart scans only what was written after it.
///
/// Layout (little-endian), documented in docs/storage-format.md:
/// ```
/// "SPIX" | version u32 = 2 | volume count u32 | entry count u64
/// per volume: id u32 | scanned end u64           (records before `end` are in the entries)
/// per entry:  group u32 | file id u64 | volume u32 | offset u64 | length u32 | crc u32 | stored ms i64
/// CRC-32C u32 of everything before it
/// ```
/// Version 1 entries have no stored time; they are read as stored at load time. The volume list
/// names every volume the store had: a volume file with a lower id that it does not name was
/// compacted away and only its removal was cut short (docs/storage-format.md).
/// Written to a temporary file, fsynced and renamed over the old one, so a crash leaves either
/// the old or the new checkpoint, never half of one. A missing or damaged checkpoint only costs
/// a full scan.
public struct IndexCheckpoint: Sendable, Equatable {
    /// Scanned end offset per volume id.
    public var volumeEnds: [UInt32: UInt64]
    /// The index as of those ends.
    public var entries: [ChunkKey: ChunkLocation]

    static let magic: [UInt8] = Array("SPIX".utf8)
    static let version: UInt32 = 2
    static func entrySize(version: UInt32) -> Int { version == 1 ? 32 : 40 }

    /// Creates a checkpoint.
    public init(volumeEnds: [UInt32: UInt64], entries: [ChunkKey: ChunkLocation]) {
        self.volumeEnds = volumeEnds
        self.entries = entries
    }

    /// Bytes to keep free on the filesystem for saving a checkpoint of `entries` chunks: the new
    /// file is written beside the old one before it replaces it, and a mebibyte for it to grow.
    static func headroom(entries: Int) -> Int { entries * entrySize(version: version) + (1 << 20) }

    /// Serializes the checkpoint.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(20 + volumeEnds.count * 12 + entries.count * Self.entrySize(version: Self.version) + 4)
        out += Self.magic
        out.appendLE(Self.version)
        out.appendLE(UInt32(volumeEnds.count))
        out.appendLE(UInt64(entries.count))
        for (id, end) in volumeEnds.sorted(by: { $0.key < $1.key }) {
            out.appendLE(id)
            out.appendLE(end)
        }
        for (key, loc) in entries {
            out.appendLE(key.group)
            out.appendLE(key.fileId)
            out.appendLE(loc.volume)
            out.appendLE(loc.offset)
            out.appendLE(loc.length)
            out.appendLE(loc.crc)
            out.appendLE(loc.storedMs)
        }
        out.appendLE(CRC32C.checksum(out))
        return out
    }

    /// Parses a checkpoint; nil when the bytes are not a whole, undamaged checkpoint.
    public init?(decoding bytes: [UInt8]) {
        guard bytes.count >= 24, Array(bytes[0..<4]) == Self.magic else { return nil }
        let body = bytes[0..<(bytes.count - 4)]
        var reader = LEReader(bytes: bytes)
        reader.position = bytes.count - 4
        guard reader.u32() == CRC32C.checksum(Array(body)) else { return nil }
        reader.position = 4
        let version = reader.u32()
        guard version == 1 || version == Self.version else { return nil }
        let volumeCount = Int(reader.u32())
        let entryCount = Int(reader.u64())
        let (size, overflow) = entryCount.multipliedReportingOverflow(by: Self.entrySize(version: version))
        guard !overflow, volumeCount < 1 << 24, 20 + volumeCount * 12 + size + 4 == bytes.count else { return nil }
        let loadedMs = currentTimeMillis()
        var ends: [UInt32: UInt64] = [:]
        for _ in 0..<volumeCount {
            let id = reader.u32()
            ends[id] = reader.u64()
        }
        var entries: [ChunkKey: ChunkLocation] = [:]
        entries.reserveCapacity(entryCount)
        for _ in 0..<entryCount {
            let key = ChunkKey(group: reader.u32(), fileId: reader.u64())
            var location = ChunkLocation(volume: reader.u32(), offset: reader.u64(), length: reader.u32(), crc: reader.u32(), storedMs: loadedMs)
            if version >= 2 { location.storedMs = min(loadedMs, Int64(bitPattern: reader.u64())) }
            entries[key] = location
        }
        self.init(volumeEnds: ends, entries: entries)
    }

    /// Reads the checkpoint at `path`; nil when it is missing or damaged.
    public static func load(from path: String) -> IndexCheckpoint? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_size > 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n == bytes.count else { return nil }
        return IndexCheckpoint(decoding: bytes)
    }

    /// Writes the checkpoint to `path` atomically and durably. On failure the old checkpoint
    /// stays and the temporary file is removed: on a full disk, half a checkpoint would hold
    /// space that compaction needs to finish.
    public func save(to path: String) throws(ChunkStoreError) {
        let temp = path + ".tmp"
        do {
            try writeTemporary(temp)
        } catch {
            unlink(temp)
            throw error
        }
        guard rename(temp, path) == 0 else { throw .io(operation: "rename \(temp)", errno: errno) }
        try VolumeFile.syncDirectory(containing: path)
    }

    /// Writes and fsyncs the encoded checkpoint to `temp`.
    private func writeTemporary(_ temp: String) throws(ChunkStoreError) {
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .io(operation: "create \(temp)", errno: errno) }
        defer { close(fd) }
        let bytes = encoded()
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write \(temp)", errno: errno)
            }
            done += n
        }
        guard fsync(fd) == 0 else { throw .io(operation: "fsync \(temp)", errno: errno) }
    }
}

extension [UInt8] {
    mutating func appendLE<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}

/// Reads little-endian integers from a byte array; callers check lengths first.
struct LEReader {
    let bytes: [UInt8]
    var position = 0

    mutating func read<T: FixedWidthInteger>(_: T.Type) -> T {
        let size = MemoryLayout<T>.size
        let value = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: position, as: T.self) }
        position += size
        return T(littleEndian: value)
    }

    mutating func u32() -> UInt32 { read(UInt32.self) }
    mutating func u64() -> UInt64 { read(UInt64.self) }
}

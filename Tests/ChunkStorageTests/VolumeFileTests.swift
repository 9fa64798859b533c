import ChunkStorage
import Foundation
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
import SpeedyTestSupport
#endif

/// Large writes go to disk in three parts (a buffered head, an O_DIRECT middle, a buffered
/// tail): whatever the offsets and sizes, the file must hold exactly the bytes written.
@Suite("VolumeFile")
struct VolumeFileTests {
    @Test func writesAtAnyOffsetLandByteForByte() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let size = 24 << 20
        let volume = try VolumeFile(creatingAt: dir.path + "/" + VolumeFile.fileName(id: 1), id: 1, size: size)
        var expected = [UInt8](repeating: 0, count: size)
        var generator = SystemRandomNumberGenerator()
        var offset = 0
        // Pieces of every kind: tiny, just under and over the direct minimum, several MiB, split
        // into one to three buffers, starting at 8-aligned but rarely block-aligned offsets.
        let sizes = [40, 65_535, 65_536 + 8, 70_001, 4 << 20, (4 << 20) + 4096, 3_000_003, 131_072, 1 << 20, 12_345]
        for total in sizes {
            var bytes = [UInt8](repeating: 0, count: total)
            bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, total) }
            let cuts = [0, min(total, 32), max(min(total, 32), total - total / 3), total]
            try bytes.withUnsafeBytes { raw in
                let buffers = zip(cuts, cuts.dropFirst()).map { UnsafeRawBufferPointer(rebasing: raw[$0..<$1]) }
                try volume.write(buffers, at: offset)
            }
            expected.replaceSubrange(offset..<(offset + total), with: bytes)
            offset = (offset + total + 7) / 8 * 8 + 8 * Int.random(in: 0...600, using: &generator)
        }
        try volume.sync()
        // Through the volume's own reads, and through a fresh open of the file.
        var read = [UInt8](repeating: 0xff, count: size)
        try read.withUnsafeMutableBytes { try volume.read(into: $0, at: 0) }
        #expect(read == expected)
        let reopened = try VolumeFile(openingAt: volume.path, id: 1)
        var again = [UInt8](repeating: 0xff, count: size)
        try again.withUnsafeMutableBytes { try reopened.read(into: $0, at: 0) }
        #expect(again == expected)
        #expect(FileManager.default.contents(atPath: volume.path).map { [UInt8]($0) } == expected)
    }

    /// What a `sendfile` of a chunk needs first: its pages in the page cache, read in by a reader
    /// thread. Bytes written around the page cache (O_DIRECT, or dropped from it) come back in;
    /// a range past the end of the file reports failure rather than a short range.
    @Test func makeResidentBringsUncachedBytesIntoThePageCache() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.path + "/" + VolumeFile.fileName(id: 1)
        let size = 8 << 20
        let volume = try VolumeFile(creatingAt: path, id: 1, size: size)
        var bytes = [UInt8](repeating: 0, count: 4 << 20)
        bytes.withUnsafeMutableBytes { arc4random_buf($0.baseAddress!, $0.count) }
        try bytes.withUnsafeBytes { try volume.write([$0], at: 4096 + 40) }
        try volume.sync()
        // Dropped from the cache, as a chunk written by O_DIRECT long ago would be.
        let other = open(path, O_RDONLY)
        #expect(other >= 0)
        #expect(posix_fadvise(other, 0, off_t(size), POSIX_FADV_DONTNEED) == 0)
        close(other)
        if try Self.fileSystemType(of: dir.path) != "tmpfs" {  // tmpfs keeps every page
            #expect(!volume.uncachedRuns(offset: 4096 + 40, length: bytes.count).isEmpty)
        }
        #expect(volume.makeResident(offset: 4096 + 40, length: bytes.count))
        #expect(volume.uncachedRuns(offset: 4096 + 40, length: bytes.count).isEmpty)
        #expect(volume.makeResident(offset: 100, length: 10))
        #expect(!volume.makeResident(offset: size - 100, length: 4096), "past the end of the file")
        // Reading it in changed nothing.
        var read = [UInt8](repeating: 0, count: bytes.count)
        try read.withUnsafeMutableBytes { try volume.read(into: $0, at: 4096 + 40) }
        #expect(read == bytes)
    }

    /// The type of the file system holding `path`, from /proc/mounts (its longest mount point).
    static func fileSystemType(of path: String) throws -> String {
        let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
        let entries = mounts.split(separator: "\n").map { $0.split(separator: " ") }.filter { $0.count > 2 }
        let best = entries.filter { path.hasPrefix($0[1]) }.max { $0[1].count < $1[1].count }
        return best.map { String($0[2]) } ?? ""
    }
}

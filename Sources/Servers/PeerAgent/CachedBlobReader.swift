import HummingbirdCore
import NIOCore
import NIOPosix
import SpeedyCore

#if canImport(Glibc)
import Glibc
#endif

/// Streams a cached blob from disk to a client, hashing it on the way: a file that no longer
/// hashes to its digest (a damaged disk, a crash mid-write) is never sent whole.
enum CachedBlobReader {
    /// Bytes read from disk per piece.
    static let pieceBytes = 1 << 20

    /// Sends `entry` to `writer` through a ``VerifiedSender``; throws (cutting the response
    /// short) when the file is shorter than its entry or does not hash to `digest`.
    static func send(_ entry: BlobCache.Entry, digest: Digest, to sender: inout VerifiedSender, writer: inout any ResponseBodyWriter) async throws {
        let fd = open(entry.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PeerError.cache("cannot open \(entry.path): errno \(errno)") }
        defer { close(fd) }
        var offset: UInt64 = 0
        while offset < entry.size {
            let want = Int(min(UInt64(pieceBytes), entry.size - offset))
            let piece = try await read(fd, at: offset, count: want)
            guard piece.readableBytes > 0 else { throw PeerError.cache("\(entry.path) ends at \(offset) of \(entry.size) bytes") }
            offset += UInt64(piece.readableBytes)
            try await sender.send(piece, to: &writer)
        }
    }

    private static func read(_ fd: Int32, at offset: UInt64, count: Int) async throws -> ByteBuffer {
        try await NIOThreadPool.singleton.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            let got = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
                var got = pread(fd, bytes.baseAddress!, count, off_t(offset))
                while got < 0, errno == EINTR { got = pread(fd, bytes.baseAddress!, count, off_t(offset)) }
                return max(got, 0)
            }
            _ = got
            return buffer
        }
    }
}

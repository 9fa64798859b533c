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

    /// Sends the blob opened by ``BlobCache/openForReading(_:)`` to `writer` through a
    /// ``VerifiedSender``; throws (cutting the response short) ``PeerError/cache(_:)`` when the
    /// file ends before its size or cannot be read, and the sender's error when it does not
    /// hash to `digest`.
    static func send(_ blob: BlobCache.OpenBlob, digest: Digest, to sender: inout VerifiedSender, writer: inout any ResponseBodyWriter) async throws {
        var offset: UInt64 = 0
        while offset < blob.size {
            let want = Int(min(UInt64(pieceBytes), blob.size - offset))
            let piece = try await read(blob, at: offset, count: want)
            offset += UInt64(piece.readableBytes)
            try await sender.send(piece, to: &writer)
        }
    }

    /// Sends cached `entry`, opening its file first (``send(_:digest:to:writer:)`` for a file
    /// opened before the response began); a file that is gone throws ``PeerError/cache(_:)``.
    static func send(_ entry: BlobCache.Entry, digest: Digest, to sender: inout VerifiedSender, writer: inout any ResponseBodyWriter) async throws {
        let fd = open(entry.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw PeerError.cache("cannot open \(entry.path): errno \(errno)") }
        let blob = BlobCache.OpenBlob(fd: fd, size: entry.size, path: entry.path)
        try await send(blob, digest: digest, to: &sender, writer: &writer)
    }

    /// Exactly `count` bytes at `offset`, read on NIO's thread pool (never on a request's
    /// executor); a file that ends before them, or a read error, throws ``PeerError/cache(_:)``.
    private static func read(_ blob: BlobCache.OpenBlob, at offset: UInt64, count: Int) async throws -> ByteBuffer {
        let fd = blob.fd
        let path = blob.path
        let size = blob.size
        return try await NIOThreadPool.singleton.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            var failure: Int32 = 0
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { bytes in
                var done = 0
                // pread may return fewer bytes than asked without the file ending: read on.
                while done < count {
                    let got = pread(fd, bytes.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if got < 0, errno == EINTR { continue }
                    guard got > 0 else {
                        failure = got < 0 ? errno : 0
                        break
                    }
                    done += got
                }
                return done
            }
            guard buffer.readableBytes == count else {
                let at = offset + UInt64(buffer.readableBytes)
                throw PeerError.cache(failure != 0 ? "cannot read \(path) at byte \(at): errno \(failure)" : "\(path) ends at byte \(at) of \(size)")
            }
            return buffer
        }
    }
}

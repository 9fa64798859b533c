import CoreMetrics
import HummingbirdCore
import NIOCore
import SpeedyCore

/// Sends a blob's bytes to a client while hashing them (and, on a miss, writing them to a
/// temporary cache file), always one piece behind: the last piece goes out only once the whole
/// blob hashed to its digest and had its announced length. A blob that does not verify is never
/// completed, whatever its source: the caller throws, the connection ends short of its
/// `Content-Length`, and the client sees a failed download.
struct VerifiedSender {
    let digest: Digest
    /// The length announced to the client, when known.
    let size: UInt64?
    let metrics: PeerMetrics
    private var hasher = SHA256Hasher()
    private var held: ByteBuffer?
    private var sink: CacheTempFile?
    private let cache: BlobCache
    /// Bytes hashed so far.
    private(set) var received: UInt64 = 0

    /// A sender of `digest`; with `sink`, the bytes also go to that temporary file, which
    /// enters `cache` once they verify.
    init(digest: Digest, size: UInt64?, sink: CacheTempFile?, cache: BlobCache, metrics: PeerMetrics) {
        self.digest = digest
        self.size = size
        self.sink = sink
        self.cache = cache
        self.metrics = metrics
    }

    /// Takes the next piece of the blob: hashes and stores it, and sends the one held before.
    mutating func send(_ piece: ByteBuffer, to writer: inout any ResponseBodyWriter) async throws {
        guard piece.readableBytes > 0 else { return }
        received += UInt64(piece.readableBytes)
        if let size, received > size {
            throw PeerError.digestMismatch(expected: digest.description, got: "more than \(size) bytes")
        }
        hasher.update(piece)
        // A cache that cannot take the bytes (a full disk) costs the cache, never the pull.
        if let file = sink {
            do {
                try await file.write(piece, at: received - UInt64(piece.readableBytes))
            } catch {
                file.discard(from: cache)
                sink = nil
                metrics.cacheWriteFailures.increment()
            }
        }
        if let previous = held {
            try await Self.write(previous, to: &writer)
            metrics.servedBytes.increment(by: Int64(previous.readableBytes))
        }
        held = piece
    }

    /// The client's connection failed under a write: it went away, or the idle watchdog cut it
    /// off. Not a failed download: no source failed.
    struct ClientGone: Error {
        let underlying: any Error
    }

    private static func write(_ piece: ByteBuffer, to writer: inout any ResponseBodyWriter) async throws {
        do {
            try await writer.write(piece)
        } catch {
            throw ClientGone(underlying: error)
        }
    }

    /// Checks the length and the digest; when both are right, moves the temporary file into the
    /// cache, then sends the last piece and ends the response. Throws
    /// ``PeerError/digestMismatch(expected:got:)`` otherwise, having sent nothing more.
    mutating func finish(to writer: inout any ResponseBodyWriter) async throws {
        if let size, received != size {
            throw PeerError.digestMismatch(expected: digest.description, got: "\(received) of \(size) bytes")
        }
        let got = hasher.finalize()
        guard got == digest else { throw PeerError.digestMismatch(expected: digest.description, got: got.description) }
        let verified = sink
        sink = nil
        // The bytes are right; a cache that cannot keep them misses only them.
        if let verified { try? await verified.commit(to: cache, digest: digest, size: received) }
        if let last = held {
            try await Self.write(last, to: &writer)
            metrics.servedBytes.increment(by: Int64(last.readableBytes))
        }
        held = nil
        do {
            try await writer.finish(nil)
        } catch {
            throw ClientGone(underlying: error)
        }
    }

    /// Deletes the temporary file, if any (the transfer failed).
    mutating func abandon() {
        sink?.discard(from: cache)
        sink = nil
    }
}

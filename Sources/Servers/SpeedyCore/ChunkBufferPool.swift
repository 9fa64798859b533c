import CSpeedy
@_spi(CustomByteBufferAllocator) import NIOCore

/// Where chunk-sized buffers come from: a ByteBuffer allocator whose large blocks (1 MiB and
/// up) are kept for reuse when freed, up to ``limit`` bytes per process.
///
/// A fresh 4 MiB buffer is a new mapping: 1024 page faults, each page zeroed by the kernel, and
/// an unmap when it is freed. Every chunk passes through several such buffers (received,
/// stored, read back, sent), which cost the imageserver and chunkservers 10 to 15% of their CPU.
/// Reused blocks have their pages mapped already. Blocks beyond the limit are freed as usual,
/// so the pool never holds more than ``limit`` of idle memory.
public enum ChunkBufferPool {
    /// The allocator for chunk buffers.
    public static let allocator = ByteBufferAllocator(
        allocate: speedy_pool_alloc, reallocate: speedy_pool_realloc, deallocate: speedy_pool_free, copy: speedy_pool_copy)

    /// Idle bytes the pool may keep (default 32 MiB, eight 4 MiB chunks).
    public static func setLimit(_ bytes: Int) {
        speedy_pool_set_limit(max(0, bytes))
    }

    /// Idle bytes the pool keeps now.
    public static var pooledBytes: Int { Int(speedy_pool_pooled_bytes()) }
}

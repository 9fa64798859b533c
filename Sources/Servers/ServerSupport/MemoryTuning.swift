import CSpeedy

/// Keeps a server's resident memory close to what it really holds.
///
/// Chunk buffers are megabytes each and short-lived. glibc raises its mmap threshold after such
/// blocks are freed, so later ones come from heap arenas that are never given back, and resident
/// memory creeps up to the high-water mark of every arena. A fixed threshold of 1 MiB makes every
/// chunk buffer its own mapping, returned to the system when freed.
public enum MemoryTuning {
    /// Applies the settings; call once at start.
    public static func apply() {
        speedy_tune_malloc(1 << 20, 4)
    }
}

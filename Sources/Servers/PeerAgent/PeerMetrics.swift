import CoreMetrics
import Metrics
import ServerSupport

/// The agent's counters (docs/peer.md, docs/metrics.md): where blob bytes came from, what the
/// cache did, what was served and how many chunks failed their CRC.
struct PeerMetrics: Sendable {
    /// Chunk bytes read from chunkservers (each chunk counted once it passed its CRC).
    let chunkserverBytes: Counter
    /// Chunk bytes read from other agents (each chunk counted once it passed its CRC).
    let peerBytes: Counter
    /// Chunk bytes sent to other agents.
    let uploadedBytes: Counter
    /// Chunks a peer sent with a wrong CRC-32C or length (the peer was dropped for that blob).
    let badPeerChunks: Counter
    /// Body bytes the registry sent (blobs, manifests, listings).
    let imageserverBytes: Counter
    /// Blob GETs served from the cache.
    let cacheHits: Counter
    /// Blob GETs the cache did not have.
    let cacheMisses: Counter
    /// Body bytes sent to the host's clients.
    let servedBytes: Counter
    /// Chunks a chunkserver sent with a wrong CRC-32C or length (another member was tried).
    let crcFailures: Counter
    /// Blob downloads that ended without a verified blob (the client's response was cut short).
    let failedDownloads: Counter
    /// Downloads the cache could not keep (its disk full or failing); the client still got them.
    let cacheWriteFailures: Counter

    init() {
        RoleMetrics.bootstrap()
        chunkserverBytes = Counter(label: "speedy_peer_chunkserver_bytes_total")
        imageserverBytes = Counter(label: "speedy_peer_imageserver_bytes_total")
        peerBytes = Counter(label: "speedy_peer_peer_bytes_total")
        uploadedBytes = Counter(label: "speedy_peer_uploaded_bytes_total")
        badPeerChunks = Counter(label: "speedy_peer_bad_peer_chunks_total")
        cacheHits = Counter(label: "speedy_peer_cache_hits_total")
        cacheMisses = Counter(label: "speedy_peer_cache_misses_total")
        servedBytes = Counter(label: "speedy_peer_served_bytes_total")
        crcFailures = Counter(label: "speedy_peer_chunk_crc_failures_total")
        failedDownloads = Counter(label: "speedy_peer_failed_downloads_total")
        cacheWriteFailures = Counter(label: "speedy_peer_cache_write_failures_total")
    }

    /// Sets the cache gauges (read at each scrape).
    func collect(cache: BlobCache.Usage) {
        Gauge(label: "speedy_peer_cache_bytes").record(Double(cache.bytes))
        Gauge(label: "speedy_peer_cache_blobs").record(Double(cache.blobs))
        Gauge(label: "speedy_peer_cache_limit_bytes").record(Double(cache.limit))
    }
}

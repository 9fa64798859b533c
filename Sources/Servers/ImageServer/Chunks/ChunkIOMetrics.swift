import CoreMetrics
import Metrics
import ServerSupport

/// What the imageserver counts of its chunk traffic (docs/metrics.md).
struct ChunkIOMetrics: Sendable {
    let writes: Counter
    let writeBytes: Counter
    let writeSeconds: Metrics.Timer
    /// A chunk written to another group after one failed.
    let writeRetries: Counter
    let writeFailures: Counter
    let reads: Counter
    let readBytes: Counter
    let readSeconds: Metrics.Timer
    /// A member failed a read and the next one was asked.
    let readFailovers: Counter
    /// A copy whose bytes did not match their CRC or the blob's record.
    let crcMismatches: Counter
    let readFailures: Counter
    /// Chunk maps answered (`GET /v2/<name>/_speedy/chunks/<digest>`).
    let chunkMaps: Counter
    /// Chunk tickets handed out in them.
    let chunkTickets: Counter

    init() {
        RoleMetrics.bootstrap()
        writes = Counter(label: "speedy_imageserver_chunk_writes_total")
        writeBytes = Counter(label: "speedy_imageserver_chunk_write_bytes_total")
        writeSeconds = Metrics.Timer(label: "speedy_imageserver_chunk_write_seconds")
        writeRetries = Counter(label: "speedy_imageserver_chunk_write_retries_total")
        writeFailures = Counter(label: "speedy_imageserver_chunk_write_failures_total")
        reads = Counter(label: "speedy_imageserver_chunk_reads_total")
        readBytes = Counter(label: "speedy_imageserver_chunk_read_bytes_total")
        readSeconds = Metrics.Timer(label: "speedy_imageserver_chunk_read_seconds")
        readFailovers = Counter(label: "speedy_imageserver_chunk_read_failovers_total")
        crcMismatches = Counter(label: "speedy_imageserver_chunk_crc_mismatches_total")
        readFailures = Counter(label: "speedy_imageserver_chunk_read_failures_total")
        chunkMaps = Counter(label: "speedy_imageserver_chunk_maps_total")
        chunkTickets = Counter(label: "speedy_imageserver_chunk_tickets_total")
    }

    /// Metrics shared by every ``ChunkIO`` of the process.
    static let shared = ChunkIOMetrics()
}

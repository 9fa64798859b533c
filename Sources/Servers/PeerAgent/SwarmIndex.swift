import Foundation
import Logging
import SpeedyCore
import Synchronization

/// How many chunks each cached blob has, so the agent can announce whole blobs to the tracker
/// after a restart (the cache keeps bytes, not chunk maps). Kept in `DIR/swarm-index.json`,
/// rewritten whole (a temporary file renamed over it) on every change.
final class SwarmIndex: Sendable {
    /// The most blobs remembered; the oldest entries go first.
    static let maxEntries = 20_000

    private struct Entry: Codable {
        var chunks: Int
        var added: Double
    }

    private let path: String
    private let entries: Mutex<[String: Entry]>
    private let logger: Logger

    /// The index in `directory` (the cache's), read back if it is there.
    init(directory: String, logger: Logger) {
        path = directory + "/swarm-index.json"
        self.logger = logger
        let saved = (try? Data(contentsOf: URL(fileURLWithPath: path))).flatMap { try? JSONDecoder().decode([String: Entry].self, from: $0) }
        entries = Mutex(saved ?? [:])
    }

    /// Remembers that `digest` has `chunks` chunks.
    func record(_ digest: Digest, chunks: Int) {
        guard (1...ChunkBitfield.maxCount).contains(chunks) else { return }
        // Saved under the lock, so the file never goes back to an older state; it is small and
        // written once per downloaded blob.
        entries.withLock { entries in
            entries[digest.description] = Entry(chunks: chunks, added: Date().timeIntervalSince1970)
            if entries.count > Self.maxEntries, let oldest = entries.min(by: { $0.value.added < $1.value.added }) {
                entries[oldest.key] = nil
            }
            save(entries)
        }
    }

    /// The blobs remembered, with their chunk counts.
    func all() -> [(digest: Digest, chunks: Int)] {
        entries.withLock { entries in entries.compactMap { key, entry in Digest(parsing: key).map { ($0, entry.chunks) } } }
    }

    /// The chunk count of `digest`, if remembered.
    func chunks(of digest: Digest) -> Int? { entries.withLock { $0[digest.description]?.chunks } }

    /// Forgets blobs the cache no longer has.
    func forget(_ digests: [Digest]) {
        guard !digests.isEmpty else { return }
        entries.withLock { entries in
            for digest in digests { entries[digest.description] = nil }
            save(entries)
        }
    }

    private func save(_ snapshot: [String: Entry]) {
        do {
            let data = try JSONEncoder().encode(snapshot)
            let temporary = path + ".tmp"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { throw PeerError.cache("cannot rename \(temporary): errno \(errno)") }
        } catch {
            logger.warning("swarm index \(path): \(error)")
        }
    }
}

import Logging
import NIOCore
import NIOPosix
import SpeedyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

extension VolumeChunkStore {
    /// Every volume, by id.
    public func volumeStats() -> [VolumeStat] {
        state.withLock { s in
            s.volumes.keys.sorted().map { id in
                VolumeStat(
                    id: id, size: s.volumes[id]!.size, end: s.volumeEnds[id] ?? 0, liveBytes: s.liveRecordBytes[id] ?? 0,
                    active: id == s.activeVolume)
            }
        }
    }

    /// Volumes compacted away since the store opened, and the bytes their removal gave back.
    public var compactionTotals: (volumes: UInt64, bytes: UInt64) { state.withLock { ($0.compactions, $0.reclaimedBytes) } }

    /// Compacts every sealed volume whose live fraction is under `threshold`, one after another.
    public func compactAll(threshold: Double, bytesPerSecond: Int) async throws(ChunkStoreError) -> [CompactionReport] {
        var reports: [CompactionReport] = []
        for stat in volumeStats() where !stat.active && stat.liveFraction < threshold {
            reports.append(try await compact(volume: stat.id, bytesPerSecond: bytesPerSecond))
        }
        return reports
    }

    /// Rewrites a sealed volume online (docs/storage-format.md, "Compaction"):
    /// 1. every record the index still points at is copied to the end of the active volume
    ///    through the writer (so a delete or put that comes meanwhile wins), and every tombstone
    ///    an older volume may still need; copies are fsynced like any write;
    /// 2. the volume leaves the in-memory map (reads already under way keep their descriptor);
    /// 3. a checkpoint that no longer names the volume is saved;
    /// 4. the file is unlinked and the directory fsynced.
    /// A crash before 3 leaves the volume and its copies (the rescan prefers the later copies); a
    /// crash between 3 and 4 leaves a file the checkpoint does not name, which the next open removes.
    /// Reads go on throughout; copying is paced to `bytesPerSecond` (0: unpaced).
    public func compact(volume id: UInt32, bytesPerSecond: Int) async throws(ChunkStoreError) -> CompactionReport {
        let start = ContinuousClock.now
        let (volume, end, hasOlder) = try beginCompaction(id)
        defer { state.withLock { $0.compacting = false } }
        var report = CompactionReport(volume: id, chunksMoved: 0, bytesMoved: 0, tombstonesKept: 0, bytesReclaimed: 0, durationMs: 0)
        for (header, offset) in try await records(of: volume, before: end) {
            let key = header.key
            let location = state.withLock { $0.index[key] }
            if header.isTombstone {
                // A tombstone matters only while an older volume may hold the record it deletes.
                guard location == nil, hasOlder else { continue }
                _ = try await enqueue(.tombstone(key)).get()
                report.tombstonesKept += 1
                continue
            }
            guard let location, location.volume == id, location.offset == UInt64(offset) else { continue }
            let data = try await read(key, at: location, in: volume)
            _ = try await enqueue(.relocate(key, from: location, data)).get()
            report.chunksMoved += 1
            report.bytesMoved += location.recordSize
            await pace(bytes: report.bytesMoved, since: start, bytesPerSecond: bytesPerSecond)
        }
        try await finishCompaction(volume)
        // Net of the copies, which now take room in the active volume.
        report.bytesReclaimed = max(0, volume.size - report.bytesMoved)
        report.durationMs = Int64((ContinuousClock.now - start) / .milliseconds(1))
        logger.notice("volume \(id) compacted: \(report.chunksMoved) chunks moved, \(report.bytesReclaimed) bytes given back")
        return report
    }

    /// Claims the compaction slot for a sealed volume: its file, where its records end, and
    /// whether an older volume exists (which decides whether tombstones must be kept).
    private func beginCompaction(_ id: UInt32) throws(ChunkStoreError) -> (VolumeFile, Int, Bool) {
        // Older volumes on disk, not just in the map: a file whose removal failed still holds
        // records a tombstone may have to keep deleted.
        let hasOlder = try Self.volumeIds(in: configuration.directory).contains { $0 < id }
        return try state.withLock { (s) throws(ChunkStoreError) in
            if s.closed { throw .closed }
            guard let volume = s.volumes[id] else { throw .notFound(ChunkKey(group: 0, fileId: UInt64(id))) }
            guard id != s.activeVolume else { throw .readOnly(reason: "volume \(id) is the active volume; it is compacted once sealed") }
            guard !s.compacting else { throw .readOnly(reason: "a compaction is already running") }
            s.compacting = true
            return (volume, s.volumeEnds[id] ?? 0, hasOlder)
        }
    }

    /// The headers of a volume's records and their offsets, read on a reader thread.
    private func records(of volume: VolumeFile, before end: Int) async throws(ChunkStoreError) -> [(header: RecordHeader, offset: Int)] {
        let scanner = VolumeScanner(volume: volume, maxChunkBytes: configuration.maxChunkBytes, logger: logger)
        let result: Result<[(header: RecordHeader, offset: Int)], ChunkStoreError>
        do {
            result = try await readers.runIfActive {
                var records: [(header: RecordHeader, offset: Int)] = []
                return Result { () throws(ChunkStoreError) in
                    _ = try scanner.scan(from: 0) { header, offset in
                        if offset < end { records.append((header, offset)) }
                    }
                    return records
                }
            }
        } catch {
            throw .closed
        }
        return try result.get()
    }

    private func read(_ key: ChunkKey, at location: ChunkLocation, in volume: VolumeFile) async throws(ChunkStoreError) -> ByteBuffer {
        let result: Result<ByteBuffer, ChunkStoreError>
        do {
            result = try await readers.runIfActive { Self.readRecord(key: key, location: location, volume: volume) }
        } catch {
            throw .closed
        }
        // A copy that fails its CRC is not moved: the volume stays until repair replaces the chunk.
        return try result.get()
    }

    /// Steps 2 to 4: forget the volume, checkpoint without it, unlink it.
    private func finishCompaction(_ volume: VolumeFile) async throws(ChunkStoreError) {
        let stillLive = state.withLock { s -> Int in
            let live = s.index.values.reduce(0) { $0 + ($1.volume == volume.id ? 1 : 0) }
            guard live == 0 else { return live }
            s.volumes[volume.id] = nil
            s.volumeEnds[volume.id] = nil
            s.liveRecordBytes[volume.id] = nil
            s.changesSinceCheckpoint += 1
            return 0
        }
        guard stillLive == 0 else {
            throw .readOnly(reason: "volume \(volume.id) still holds \(stillLive) live chunks after compaction; it is kept")
        }
        // Saving the index and syncing the directory block: on a reader thread, not the caller's.
        let removal: Result<Void, ChunkStoreError>
        do {
            removal = try await readers.runIfActive {
                Result { () throws(ChunkStoreError) in
                    try self.checkpoint()
                    guard unlink(volume.path) == 0 else { throw .io(operation: "unlink \(volume.path)", errno: errno) }
                    try VolumeFile.syncDirectory(containing: volume.path)
                }
            }
        } catch {
            throw .closed
        }
        try removal.get()
        state.withLock { s in
            s.compactions += 1
            s.reclaimedBytes += UInt64(volume.size)  // the file's bytes; the copies are counted as live
        }
    }

    /// Sleeps so that `bytes` copied since `start` stay under `bytesPerSecond`.
    private func pace(bytes: Int, since start: ContinuousClock.Instant, bytesPerSecond: Int) async {
        guard bytesPerSecond > 0 else { return }
        let due = start + .milliseconds(Int64(bytes) * 1000 / Int64(bytesPerSecond))
        if due > .now { try? await Task.sleep(until: due) }
    }

    /// Removes volume files a compaction had dropped from the checkpoint but not yet unlinked:
    /// those with an id under the checkpoint's highest that it does not name.
    static func finishRemovals(_ volumes: inout [UInt32: VolumeFile], checkpoint: IndexCheckpoint, logger: Logger) throws(ChunkStoreError) {
        guard let newest = checkpoint.volumeEnds.keys.max() else { return }
        for (id, volume) in volumes where id < newest && checkpoint.volumeEnds[id] == nil {
            logger.notice("volume \(id) was compacted; finishing its removal")
            guard unlink(volume.path) == 0 else { throw .io(operation: "unlink \(volume.path)", errno: errno) }
            volumes[id] = nil
            try VolumeFile.syncDirectory(containing: volume.path)
        }
    }
}

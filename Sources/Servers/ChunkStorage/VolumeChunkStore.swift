import Logging
import Metrics
import NIOCore
import NIOPosix
import SpeedyCore
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The chunkserver's storage engine: chunks appended as records (``RecordHeader``) to large
/// preallocated ``VolumeFile``s, an in-memory index from key to location, and a periodic
/// ``IndexCheckpoint`` so a restart reads only what came after it.
///
/// Writes go through one writer thread in arrival order and are acknowledged after the
/// fdatasync that covers them; writes that arrive while a sync runs share the next one
/// (group commit). Reads run on their own threads and check every CRC.
public final class VolumeChunkStore: ChunkStore {
    /// The configuration the store was opened with.
    public let configuration: VolumeStoreConfiguration
    /// What opening the store found.
    public let recovery: RecoveryReport

    let state: Mutex<State>
    /// Stored times and ages: the wall clock at open, moved on by the monotonic clock.
    let clock = StoreClock()
    private let checkpointTurn = Mutex(0)
    private let writer: NIOThreadPool
    let readers: NIOThreadPool
    let logger: Logger
    private var checkpointPath: String { configuration.directory + "/index.checkpoint" }

    enum Operation: Sendable {
        case put(ChunkKey, ByteBuffer, crc: UInt32)
        case delete(ChunkKey)
        /// Compaction: append a copy of the record at `from`, if the chunk is still there.
        case relocate(ChunkKey, from: ChunkLocation, ByteBuffer)
        /// Compaction: append a copy of a tombstone, if the chunk is still deleted.
        case tombstone(ChunkKey)
    }

    struct Pending: Sendable {
        var operation: Operation
        var continuation: CheckedContinuation<Result<ChunkInfo, ChunkStoreError>, Never>
        var bytes: Int {
            switch operation {
            case .put(_, let data, _), .relocate(_, _, let data): data.readableBytes
            case .delete, .tombstone: 0
            }
        }
    }

    struct State: Sendable {
        var index: [ChunkKey: ChunkLocation]
        var volumes: [UInt32: VolumeFile]
        /// Durable end of each volume's records.
        var volumeEnds: [UInt32: Int]
        var activeVolume: UInt32
        var pending: [Pending] = []
        var inFlight = 0
        var flushing = false
        var closed = false
        var failing = false
        /// The filesystem's available bytes when a write last failed with ENOSPC: the store is
        /// full until more than that is available again (a filesystem that cannot keep a
        /// preallocation, or another writer, took what the store counted on).
        var outOfSpaceAt: UInt64?
        var liveBytes: UInt64 = 0
        var crcErrors: UInt64 = 0
        var ioErrors: UInt64 = 0
        var syncCount: UInt64 = 0
        var changesSinceCheckpoint = 0
        /// Sorted file ids per group, rebuilt on the first listing after a change.
        var sortedIds: [UInt32: [UInt64]] = [:]
        /// Counts the changes that clear ``sortedIds``: ids sorted outside the lock are cached only
        /// when it has not moved meanwhile.
        var idChanges: UInt64 = 0
        /// Bytes of live records (header and padding included) per volume: the rest of what a
        /// volume has written is reclaimable by compaction.
        var liveRecordBytes: [UInt32: Int] = [:]
        /// Whether a compaction runs (one at a time).
        var compacting = false
        /// Volumes compacted away since the store opened, and the bytes of volume files removed.
        var compactions: UInt64 = 0
        var reclaimedBytes: UInt64 = 0

        /// The state of a store just opened: the recovered index, its byte counts, and the
        /// scanned records counted as changes since the checkpoint.
        init(recovered index: [ChunkKey: ChunkLocation], volumes: [UInt32: VolumeFile], volumeEnds: [UInt32: Int], recordsScanned: Int) {
            self.index = index
            self.volumes = volumes
            self.volumeEnds = volumeEnds
            self.activeVolume = volumes.keys.max()!
            self.liveBytes = index.values.reduce(0) { $0 + UInt64($1.length) }
            for location in index.values { liveRecordBytes[location.volume, default: 0] += location.recordSize }
            self.changesSinceCheckpoint = recordsScanned
        }
    }

    /// Opens (or creates) the store in `configuration.directory`, recovering from the checkpoint
    /// and the volumes. Blocks while it reads the disk: call it before serving.
    public init(configuration: VolumeStoreConfiguration, logger: Logger = Logger(label: "speedy.chunkstore")) throws(ChunkStoreError) {
        self.configuration = configuration
        self.logger = logger
        let dir = configuration.directory
        if mkdir(dir, 0o755) != 0 && errno != EEXIST { throw .io(operation: "mkdir \(dir)", errno: errno) }

        var volumes: [UInt32: VolumeFile] = [:]
        for id in try Self.volumeIds(in: dir) {
            volumes[id] = try VolumeFile(openingAt: dir + "/" + VolumeFile.fileName(id: id), id: id)
        }
        let saved = IndexCheckpoint.load(from: dir + "/index.checkpoint")
        if let saved {
            try Self.finishRemovals(&volumes, checkpoint: saved, logger: logger)
        }
        var (index, ends, report) = try Self.replay(volumes, after: saved, configuration: configuration, logger: logger)
        if volumes.isEmpty {
            let volume = try VolumeFile(creatingAt: dir + "/" + VolumeFile.fileName(id: 1), id: 1, size: configuration.volumeSize)
            volumes[1] = volume
            ends[1] = 0
        }
        // An older version reads fillers as a chunk of group 0 and may have checkpointed it.
        index[RecordHeader.fillerKey] = nil
        Self.dropDangling(&index, volumes: volumes, logger: logger)
        report.chunks = index.count
        self.recovery = report
        self.state = Mutex(State(recovered: index, volumes: volumes, volumeEnds: ends, recordsScanned: report.recordsScanned))
        self.writer = NIOThreadPool(numberOfThreads: 1)
        self.readers = NIOThreadPool(numberOfThreads: max(1, configuration.readThreads))
        writer.start()
        readers.start()
        if report.recordsScanned > 0 || saved == nil {
            do {
                try checkpoint()
            } catch .io(let operation, let code) where code == ENOSPC || code == EDQUOT {
                // A full disk must not keep the chunks it holds from being served: the checkpoint
                // only makes the next open faster, and the periodic one tries again.
                logger.warning("index checkpoint not saved at open (\(operation): no space); the next open scans again")
            } catch {
                try? writer.syncShutdownGracefully()
                try? readers.syncShutdownGracefully()
                throw error
            }
        }
    }

    /// Brings the checkpoint's index up to date with the records after each volume's scanned end
    /// (every record without one), zeroing torn tails and the space past the last volume's end.
    private static func replay(
        _ volumes: [UInt32: VolumeFile], after saved: IndexCheckpoint?, configuration: VolumeStoreConfiguration, logger: Logger
    ) throws(ChunkStoreError) -> (index: [ChunkKey: ChunkLocation], ends: [UInt32: Int], report: RecoveryReport) {
        var index = saved?.entries ?? [:]
        var ends: [UInt32: Int] = [:]
        var report = RecoveryReport(
            volumes: volumes.count, usedCheckpoint: saved != nil, recordsScanned: 0, tornTails: 0,
            corruptRecords: 0, chunks: 0)
        if saved == nil && !volumes.isEmpty {
            logger.warning("no usable index checkpoint in \(configuration.directory): scanning every volume")
        }
        for id in volumes.keys.sorted() {
            let volume = volumes[id]!
            let start = Int(saved?.volumeEnds[id] ?? 0)
            let scanner = VolumeScanner(volume: volume, maxChunkBytes: configuration.maxChunkBytes, logger: logger)
            let outcome = try scanner.scan(from: start) { header, offset in
                if header.isTombstone {
                    index[header.key] = nil
                } else {
                    index[header.key] = ChunkLocation(
                        volume: id, offset: UInt64(offset), length: header.length, crc: header.payloadCRC)
                }
            }
            if outcome.tornTail {
                logger.notice("volume \(id): torn write at \(outcome.end) dropped (it was never acknowledged)")
                report.tornTails += 1
            }
            // Writes resume at the end of the last volume. Whatever an unfinished batch left past it
            // (even behind a zero header) is zeroed, so it can never be read back as records.
            if outcome.tornTail || id == volumes.keys.max() {
                try volume.zero(from: outcome.end, length: configuration.maxBatchBytes + configuration.maxChunkBytes + 4096)
            }
            report.recordsScanned += outcome.records
            report.corruptRecords += outcome.corruptRecords + outcome.skippedRegions
            ends[id] = outcome.end
        }
        return (index, ends, report)
    }

    /// Drops the entries naming a volume that is gone: a compaction moved them, and the scan
    /// found no copy.
    private static func dropDangling(_ index: inout [ChunkKey: ChunkLocation], volumes: [UInt32: VolumeFile], logger: Logger) {
        let dangling = index.filter { volumes[$0.value.volume] == nil }
        if !dangling.isEmpty {
            logger.error("\(dangling.count) index entries name removed volumes and no copy was found; they are dropped")
            for key in dangling.keys { index[key] = nil }
        }
    }

    static func volumeIds(in dir: String) throws(ChunkStoreError) -> [UInt32] {
        guard let handle = opendir(dir) else { throw .io(operation: "opendir \(dir)", errno: errno) }
        defer { closedir(handle) }
        var ids: [UInt32] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if let id = VolumeFile.id(fromFileName: name) { ids.append(id) }
        }
        return ids.sorted()
    }

    // MARK: ChunkStore

    public func put(_ key: ChunkKey, data: ByteBuffer, crc: UInt32?, dataCRC: UInt32?) async throws(ChunkStoreError) -> ChunkInfo {
        guard data.readableBytes <= configuration.maxChunkBytes else {
            throw .tooLarge(length: data.readableBytes, limit: configuration.maxChunkBytes)
        }
        let actual = dataCRC ?? CRC32C.checksum(data)
        assert(dataCRC == nil || dataCRC == CRC32C.checksum(data), "dataCRC must be the CRC of data")
        if let crc, crc != actual { throw .checksumMismatch(expected: crc, actual: actual) }
        // Fast paths that need no disk: an identical retry, a conflict, a store that takes no writes.
        let early: Result<ChunkInfo, ChunkStoreError>? = state.withLock { s in
            if s.closed { return .failure(.closed) }
            if let existing = s.index[key] {
                let stored = ChunkInfo(fileId: key.fileId, length: existing.length, crc: existing.crc)
                if existing.crc == actual && Int(existing.length) == data.readableBytes { return .success(stored) }
                return .failure(.alreadyExists(key, stored: stored))
            }
            return nil
        }
        if let early { return try early.get() }
        if let reason = writeRefusal() { throw .readOnly(reason: reason) }
        return try await enqueue(.put(key, data, crc: actual)).get()
    }

    public func delete(_ key: ChunkKey) async throws(ChunkStoreError) {
        let known = state.withLock { $0.index[key] != nil }
        guard known else { throw .notFound(key) }
        _ = try await enqueue(.delete(key)).get()
    }

    public func get(_ key: ChunkKey) async throws(ChunkStoreError) -> ByteBuffer {
        let found: (ChunkLocation, VolumeFile)? = try state.withLock { (s) throws(ChunkStoreError) in
            if s.closed { throw .closed }
            guard let location = s.index[key], let volume = s.volumes[location.volume] else { return nil }
            return (location, volume)
        }
        guard let (location, volume) = found else { throw .notFound(key) }
        let result: Result<ByteBuffer, ChunkStoreError>
        do {
            result = try await readers.runIfActive { Self.readRecord(key: key, location: location, volume: volume) }
        } catch {
            throw .closed
        }
        if case .failure(let error) = result {
            state.withLock { s in
                if case .corrupt = error { s.crcErrors += 1 } else { s.ioErrors += 1 }
            }
        }
        return try result.get()
    }

    public func extent(_ key: ChunkKey) async -> ChunkExtent? {
        let found: (ChunkLocation, VolumeFile)? = state.withLock { s in
            guard !s.closed, let location = s.index[key], let volume = s.volumes[location.volume] else { return nil }
            return (location, volume)
        }
        guard let (location, volume) = found else { return nil }
        let (offset, length) = (Int(location.offset) + RecordHeader.size, Int(location.length))
        // Writes bypass the page cache, so the chunk may be on disk only: it is read in on a reader
        // thread, so that the event loop's sendfile does not wait for the disk. A cached chunk (a
        // popular layer) costs one mincore here, and no thread hop.
        let uncached = volume.uncachedRuns(offset: offset, length: length)
        if !uncached.isEmpty {
            guard (try? await readers.runIfActive({ volume.makeResident(offset: offset, length: length, uncached: uncached) })) == true else { return nil }
        }
        // Weakly: a response whose head never goes out must not keep a compacted volume's file open.
        return ChunkExtent(
            open: { [weak volume] in
                guard let volume else {
                    errno = ESTALE
                    return -1
                }
                return volume.duplicateDescriptor()
            }, offset: offset, length: length, crc: location.crc)
    }

    /// When the chunk was stored, by ``clock``; nil if absent.
    public func storedMs(_ key: ChunkKey) -> Int64? { state.withLock { $0.index[key]?.storedMs } }

    public func ageMs(_ key: ChunkKey) -> Int64? { storedMs(key).map { max(0, clock.nowMs() - $0) } }

    public func info(_ key: ChunkKey) -> ChunkInfo? {
        state.withLock { s in
            s.index[key].map { ChunkInfo(fileId: key.fileId, length: $0.length, crc: $0.crc) }
        }
    }

    public func list(group: UInt32, after: UInt64, limit: Int) -> [ChunkInfo] {
        state.withLock { s in
            let ids: [UInt64]
            if let cached = s.sortedIds[group] {
                ids = cached
            } else {
                ids = s.index.keys.lazy.filter { $0.group == group }.map(\.fileId).sorted()
                s.sortedIds[group] = ids
            }
            var low = 0
            var high = ids.count
            while low < high {
                let mid = (low + high) / 2
                if ids[mid] <= after { low = mid + 1 } else { high = mid }
            }
            return ids[low..<min(ids.count, low + max(0, limit))].compactMap { id in
                s.index[ChunkKey(group: group, fileId: id)].map { ChunkInfo(fileId: id, length: $0.length, crc: $0.crc) }
            }
        }
    }

    public func digests(group: UInt32, from: UInt64, to: UInt64, parts: Int) -> [ChunkRangeDigest] {
        var digester = RangeDigester(from: from, to: to, parts: parts)
        guard from < to else { return digester.digests }
        let ids = sortedIds(group)
        var next = ids.firstIndex(atLeast: from)
        let end = ids.firstIndex(atLeast: to)
        // CRCs are looked up a batch at a time, so a write waits for one batch at most.
        while next < end {
            let batch = ids[next..<min(end, next + 4096)]
            state.withLock { s in
                for id in batch {
                    if let location = s.index[ChunkKey(group: group, fileId: id)] { digester.add(fileId: id, crc: location.crc) }
                }
            }
            next = batch.endIndex
        }
        return digester.digests
    }

    /// `group`'s file ids in order: the listing's cache, or the ids gathered in one pass under the
    /// lock and sorted outside it (cached when nothing changed meanwhile).
    private func sortedIds(_ group: UInt32) -> [UInt64] {
        let (cached, gathered, changes): ([UInt64]?, [UInt64], UInt64) = state.withLock { s in
            if let ids = s.sortedIds[group] { return (ids, [], 0) }
            return (nil, s.index.keys.compactMap { $0.group == group ? $0.fileId : nil }, s.idChanges)
        }
        if let cached { return cached }
        let ids = gathered.sorted()
        state.withLock { s in
            if s.idChanges == changes { s.sortedIds[group] = ids }
        }
        return ids
    }

    public func usage() -> StorageUsage {
        let snapshot = state.withLock { s in
            (
                appended: s.volumeEnds.values.reduce(0, +),
                activeTail: s.volumes[s.activeVolume].map { $0.size - (s.volumeEnds[s.activeVolume] ?? 0) } ?? 0,
                count: s.index.count, live: s.liveBytes, failing: s.failing,
                crc: s.crcErrors, io: s.ioErrors, pending: s.pending.count + s.inFlight, syncs: s.syncCount
            )
        }
        var (total, free) = space(appended: snapshot.appended, activeTail: snapshot.activeTail, entries: snapshot.count)
        if stillOutOfSpace() { free = 0 }
        let health: StoreHealth = snapshot.failing ? .failing : (free < writeFloor ? .full : .writable)
        return StorageUsage(
            totalBytes: total, usedBytes: total - free, freeBytes: free, chunkCount: UInt64(snapshot.count),
            chunkBytes: snapshot.live, health: health, crcErrors: snapshot.crc, ioErrors: snapshot.io,
            pendingWrites: UInt64(snapshot.pending), syncCount: snapshot.syncs)
    }

    /// Under this much free space the store is `.full`: the reserve, and never less than one
    /// chunk of the largest size, so a store that says it takes writes has room for any chunk.
    var writeFloor: UInt64 {
        max(configuration.reserveBytes, UInt64(RecordHeader.recordSize(payloadLength: configuration.maxChunkBytes)))
    }

    /// Whether a write found the disk full and the filesystem has not gained space since.
    private func stillOutOfSpace() -> Bool {
        guard let mark = state.withLock({ $0.outOfSpaceAt }) else { return false }
        guard let available = filesystemAvailable(), available > mark else { return true }
        state.withLock { if $0.outOfSpaceAt == mark { $0.outOfSpaceAt = nil } }
        return false
    }

    /// The filesystem's available bytes (statvfs), nil when it cannot be asked.
    private func filesystemAvailable() -> UInt64? {
        var fs = statvfs()
        guard statvfs(configuration.directory, &fs) == 0 else { return nil }
        return UInt64(fs.f_bavail) * UInt64(fs.f_frsize)
    }

    /// The usable size and the free space, measured afresh at each call (statvfs), so a store
    /// turns writable again by itself when space comes back.
    ///
    /// Free is only what writes can really use: the rest of the active volume, plus the whole
    /// volumes the filesystem can still preallocate while keeping room for the index checkpoint.
    /// Free space short of a volume is not counted: a new volume that cannot be preallocated
    /// fails every write that needs it, so the store must turn read-only before then. Sealed
    /// volumes' unused tails are never written. With `capacityBytes`, everything appended counts
    /// as used and free space is never more than the filesystem's.
    private func space(appended: Int, activeTail: Int, entries: Int) -> (total: UInt64, free: UInt64) {
        var fs = statvfs()
        guard statvfs(configuration.directory, &fs) == 0 else { return (configuration.capacityBytes ?? 0, 0) }
        let fsTotal = UInt64(fs.f_blocks) * UInt64(fs.f_frsize)
        let available = UInt64(fs.f_bavail) * UInt64(fs.f_frsize)
        let headroom = UInt64(IndexCheckpoint.headroom(entries: entries))
        let volume = UInt64(max(1, configuration.volumeSize))
        let newVolumes = available > headroom ? (available - headroom) / volume * volume : 0
        let writable = min(fsTotal, UInt64(max(0, activeTail)) + newVolumes)
        guard let capacity = configuration.capacityBytes else { return (fsTotal, writable) }
        let underCap = capacity > UInt64(appended) ? capacity - UInt64(appended) : 0
        return (capacity, min(underCap, writable))
    }

    public func close() async {
        let wasOpen = state.withLock { s in
            defer { s.closed = true }
            return !s.closed
        }
        guard wasOpen else { return }
        // Let writes already accepted finish: they may have been promised to a client.
        while state.withLock({ $0.flushing }) {
            try? await Task.sleep(for: .milliseconds(2))
        }
        do {
            try checkpoint()
        } catch {
            logger.error("checkpoint on close failed: \(error)")
        }
        try? await writer.shutdownGracefully()
        try? await readers.shutdownGracefully()
    }

    // MARK: Checkpoint

    /// Whether anything was written since the last checkpoint.
    public var needsCheckpoint: Bool { state.withLock { $0.changesSinceCheckpoint > 0 } }

    /// Saves the index so the next open reads only what comes after now. Blocking; cheap to call
    /// when nothing changed.
    public func checkpoint() throws(ChunkStoreError) {
        // One save at a time, each from a snapshot taken inside the turn: a slower save of an
        // older snapshot must never land after a newer one (compaction depends on it).
        try checkpointTurn.withLock { (_) throws(ChunkStoreError) in
            let (ends, index, changes) = state.withLock { s in
                (s.volumeEnds, s.index, s.changesSinceCheckpoint)
            }
            try IndexCheckpoint(volumeEnds: ends.mapValues { UInt64($0) }, entries: index).save(to: checkpointPath)
            state.withLock { $0.changesSinceCheckpoint -= changes }
        }
    }

    // MARK: Writing

    /// Why writes are refused right now, or nil when they are taken.
    private func writeRefusal() -> String? {
        let usage = usage()
        switch usage.health {
        case .writable: return nil
        case .full: return "free space \(usage.freeBytes) bytes is under the \(writeFloor)-byte reserve"
        case .failing: return "a disk write failed; an operator must check this disk"
        }
    }

    func enqueue(_ operation: Operation) async -> Result<ChunkInfo, ChunkStoreError> {
        await withCheckedContinuation { continuation in
            let start: Bool = state.withLock { s in
                if s.closed {
                    continuation.resume(returning: .failure(.closed))
                    return false
                }
                s.pending.append(Pending(operation: operation, continuation: continuation))
                if s.flushing { return false }
                s.flushing = true
                return true
            }
            if start {
                writer.submit { [self] _ in flushLoop() }
            }
        }
    }

    /// Latency of each volume fsync of a group commit (`speedy_chunkserver_fsync_seconds`).
    static let syncTimer = Metrics.Timer(label: "speedy_chunkserver_fsync_seconds")

    /// Runs on the writer thread until no write is waiting: each turn writes one batch and fsyncs it.
    private func flushLoop() {
        while true {
            let batch: [Pending] = state.withLock { s in
                guard !s.pending.isEmpty else {
                    s.flushing = false
                    return []
                }
                var bytes = 0
                var count = 0
                for item in s.pending {
                    if count > 0 && bytes + item.bytes > configuration.maxBatchBytes { break }
                    bytes += item.bytes
                    count += 1
                }
                let batch = Array(s.pending.prefix(count))
                s.pending.removeFirst(count)
                s.inFlight = count
                return batch
            }
            if batch.isEmpty { return }
            let results = writeBatch(batch)
            for (item, result) in zip(batch, results) { item.continuation.resume(returning: result) }
        }
    }

    /// A change the batch makes to the index once its fsync succeeded.
    private enum Staged {
        case stored(ChunkKey, ChunkLocation)
        case removed(ChunkKey)
        case moved(ChunkKey, from: ChunkLocation, to: ChunkLocation)
    }

    /// What a batch has done so far: its answers, the records it appended and the index changes
    /// waiting for their fsync.
    private struct BatchProgress {
        var results: [Result<ChunkInfo, ChunkStoreError>] = []
        var staged: [Staged] = []
        /// The index as this batch will leave it, for duplicates and deletes within the batch.
        var overlay: [ChunkKey: ChunkLocation?] = [:]
        var touched: Set<UInt32> = []
        /// The volume records are appended to, and where its records end.
        var active: VolumeFile
        var end: Int
        /// Whether the store fails writes (before the batch, or since one of its writes failed).
        var failing: Bool
        /// Where this batch leaves each volume it wrote to (a roll can touch two).
        var ends: [UInt32: Int] = [:]
        var free: UInt64
    }

    /// The record one operation of a batch appends.
    private struct BatchRecord {
        var key: ChunkKey
        var payload: ByteBuffer
        var crc: UInt32
        var tombstone: Bool
        /// Compaction's copy of a chunk: where the record it copies lies.
        var relocating: ChunkLocation?
        /// Compaction's copy of a tombstone, which changes nothing in the index.
        var copiedTombstone: Bool
    }

    /// What one operation of a batch comes to: an answer without a write, or a record to append.
    private enum BatchStep {
        case answered(Result<ChunkInfo, ChunkStoreError>)
        case append(BatchRecord)
    }

    /// Appends the batch's records, fsyncs every volume they touched, and only then applies their
    /// index changes: one result per item, a success only once its record is durable.
    private func writeBatch(_ batch: [Pending]) -> [Result<ChunkInfo, ChunkStoreError>] {
        var progress = beginBatch()
        for item in batch {
            switch step(for: item.operation, overlay: progress.overlay) {
            case .answered(let result):
                progress.results.append(result)
            case .append(let record):
                let result = append(record, &progress)
                progress.results.append(result)
            }
        }
        let syncError = syncVolumes(progress.touched)
        commit(progress, syncError: syncError)
        if let syncError {
            return progress.results.map { result in result.flatMap { _ in .failure(syncError) } }
        }
        return progress.results
    }

    /// A batch's starting point: the active volume, its end, whether the store fails writes, and
    /// the free space.
    private func beginBatch() -> BatchProgress {
        let (active, end, failing) = state.withLock { s in
            (s.volumes[s.activeVolume]!, s.volumeEnds[s.activeVolume]!, s.failing)
        }
        return BatchProgress(active: active, end: end, failing: failing, free: usage().freeBytes)
    }

    /// Where `key` is as the batch so far leaves the index (nil: absent).
    ///
    /// Looked up under the lock rather than from a copy: a copy of the index kept alive while
    /// the batch commits would make that commit copy the whole dictionary.
    private func current(_ key: ChunkKey, overlay: [ChunkKey: ChunkLocation?]) -> ChunkLocation? {
        if let entry = overlay[key] { return entry }
        return state.withLock { $0.index[key] }
    }

    /// Decides an operation against the index as the batch leaves it: an identical retry, a
    /// conflict, a missing chunk or a stale compaction copy is answered; the rest is a record.
    private func step(for operation: Operation, overlay: [ChunkKey: ChunkLocation?]) -> BatchStep {
        switch operation {
        case .put(let k, let data, let c):
            if let existing = current(k, overlay: overlay) {
                let stored = ChunkInfo(fileId: k.fileId, length: existing.length, crc: existing.crc)
                let same = existing.crc == c && Int(existing.length) == data.readableBytes
                return .answered(same ? .success(stored) : .failure(.alreadyExists(k, stored: stored)))
            }
            return .append(BatchRecord(key: k, payload: data, crc: c, tombstone: false, relocating: nil, copiedTombstone: false))
        case .delete(let k):
            guard current(k, overlay: overlay) != nil else { return .answered(.failure(.notFound(k))) }
            return .append(BatchRecord(key: k, payload: ByteBuffer(), crc: 0, tombstone: true, relocating: nil, copiedTombstone: false))
        case .relocate(let k, let from, let data):
            // Deleted or rewritten since compaction read it: the copy would be stale.
            guard current(k, overlay: overlay) == from else {
                return .answered(.success(ChunkInfo(fileId: k.fileId, length: from.length, crc: from.crc)))
            }
            return .append(BatchRecord(key: k, payload: data, crc: from.crc, tombstone: false, relocating: from, copiedTombstone: false))
        case .tombstone(let k):
            // Stored again since: a copied tombstone after the new record would delete it on a rescan.
            guard current(k, overlay: overlay) == nil else { return .answered(.success(ChunkInfo(fileId: k.fileId, length: 0, crc: 0))) }
            return .append(BatchRecord(key: k, payload: ByteBuffer(), crc: 0, tombstone: true, relocating: nil, copiedTombstone: true))
        }
    }

    /// Appends one record unless the store fails writes or lacks the space; a write error other
    /// than a full disk turns the rest of the batch (and then the store) read-only.
    private func append(_ record: BatchRecord, _ progress: inout BatchProgress) -> Result<ChunkInfo, ChunkStoreError> {
        if progress.failing {
            return .failure(.readOnly(reason: "a disk write failed; an operator must check this disk"))
        }
        let size = RecordHeader.recordSize(payloadLength: record.payload.readableBytes)
        // The reserve is headroom: a write may dip into it, after which the store is read-only.
        // Compaction may use it: its copies are what gives space back.
        let reserve = record.relocating == nil ? configuration.reserveBytes : 0
        if !record.tombstone && (progress.free < reserve || progress.free < UInt64(size)) {
            return .failure(.readOnly(reason: "free space \(progress.free) bytes is under the \(configuration.reserveBytes)-byte reserve"))
        }
        do throws(ChunkStoreError) {
            return .success(try write(record, size: size, &progress))
        } catch {
            if case .io(_, let code) = error, code == ENOSPC || code == EDQUOT {
                // Nothing was acknowledged or indexed: the record's place is written over next.
                let available = filesystemAvailable() ?? 0
                state.withLock { $0.outOfSpaceAt = available }
                progress.free = 0
                logger.warning("write of chunk \(record.key) found the disk full; read-only until space comes back")
                return .failure(.readOnly(reason: "disk full"))
            }
            logger.error("write of chunk \(record.key) failed: \(error); the store is now read-only")
            progress.failing = true
            state.withLock { $0.ioErrors += 1 }
            return .failure(error)
        }
    }

    /// Writes one record at the active volume's end (rolling to a new volume when it does not
    /// fit) and stages its index change; nothing is synced or applied here.
    private func write(_ record: BatchRecord, size: Int, _ progress: inout BatchProgress) throws(ChunkStoreError) -> ChunkInfo {
        // A filler only where the record fits with it: it never rolls a volume or dips into the
        // space the reserve check allowed for the record itself.
        var filler = Self.fillerSize(before: record.payload, at: progress.end)
        if progress.end + filler + size > progress.active.size || progress.free < UInt64(size + filler) { filler = 0 }
        if progress.end + size > progress.active.size {
            progress.active = try rollVolume(after: progress.active)
            progress.end = 0
            filler = Self.fillerSize(before: record.payload, at: 0)
            if filler + size > progress.active.size || progress.free < UInt64(size + filler) { filler = 0 }
        }
        if filler > 0 {
            try Self.writeRecord(.filler(recordSize: filler), payload: ByteBuffer(repeating: 0, count: filler - RecordHeader.size), to: progress.active, at: progress.end)
            progress.end += filler
            progress.free -= min(progress.free, UInt64(filler))
        }
        let key = record.key
        let header = RecordHeader(key: key, length: UInt32(record.payload.readableBytes), payloadCRC: record.crc, tombstone: record.tombstone)
        try Self.writeRecord(header, payload: record.payload, to: progress.active, at: progress.end)
        var location = ChunkLocation(
            volume: progress.active.id, offset: UInt64(progress.end), length: header.length, crc: record.crc, storedMs: clock.nowMs())
        if let from = record.relocating {
            location.storedMs = from.storedMs
            progress.staged.append(.moved(key, from: from, to: location))
            progress.overlay[key] = location
        } else if !record.copiedTombstone {
            progress.staged.append(record.tombstone ? .removed(key) : .stored(key, location))
            progress.overlay[key] = record.tombstone ? .some(nil) : location
        }
        progress.touched.insert(progress.active.id)
        progress.end += size
        progress.ends[progress.active.id] = progress.end
        progress.free -= min(progress.free, UInt64(size))
        return ChunkInfo(fileId: key.fileId, length: header.length, crc: record.crc)
    }

    /// Fsyncs each volume in `touched`, timing each: one sync per volume covers every record of
    /// the batch (the group commit). Returns the last failure, if any.
    private func syncVolumes(_ touched: Set<UInt32>) -> ChunkStoreError? {
        var syncError: ChunkStoreError?
        let volumes = state.withLock { s in touched.map { s.volumes[$0]! } }
        for volume in volumes {
            let started = ContinuousClock.now
            do { try volume.sync() } catch { syncError = error }
            let elapsed = ContinuousClock.now - started
            Self.syncTimer.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        }
        return syncError
    }

    /// Ends the batch under the lock: after a good sync publishes the volume ends, the active
    /// volume and the staged index changes; after a failed one only turns the store read-only.
    private func commit(_ progress: BatchProgress, syncError: ChunkStoreError?) {
        state.withLock { s in
            s.inFlight = 0
            if !progress.touched.isEmpty { s.syncCount += 1 }
            if let syncError {
                // After a failed fsync nothing written since the last good one can be trusted.
                s.failing = true
                s.ioErrors += 1
                logger.error("fsync failed: \(syncError); the store is now read-only")
                return
            }
            s.failing = s.failing || progress.failing
            s.activeVolume = progress.active.id
            s.volumes[progress.active.id] = progress.active
            for (id, volumeEnd) in progress.ends { s.volumeEnds[id] = volumeEnd }
            for change in progress.staged { Self.apply(change, to: &s) }
            s.changesSinceCheckpoint += progress.staged.count
        }
    }

    /// Applies one staged change to the index, its live byte counts and the listing cache.
    private static func apply(_ change: Staged, to s: inout State) {
        switch change {
        case .stored(let key, let location):
            s.index[key] = location
            s.liveBytes += UInt64(location.length)
            s.liveRecordBytes[location.volume, default: 0] += location.recordSize
            s.sortedIds[key.group] = nil
            s.idChanges += 1
        case .removed(let key):
            if let old = s.index.removeValue(forKey: key) {
                s.liveBytes -= UInt64(old.length)
                s.liveRecordBytes[old.volume, default: 0] -= old.recordSize
            }
            s.sortedIds[key.group] = nil
            s.idChanges += 1
        case .moved(let key, let from, let to):
            // The writer is the only one changing the index, so `from` is still current.
            s.index[key] = to
            s.liveRecordBytes[from.volume, default: 0] -= from.recordSize
            s.liveRecordBytes[to.volume, default: 0] += to.recordSize
        }
    }

    /// Seals `volume` (its remaining tail stays zero) and creates the next one. The old volume is
    /// synced with the rest of the batch, so a failed sync fails every write of the batch.
    private func rollVolume(after volume: VolumeFile) throws(ChunkStoreError) -> VolumeFile {
        let id = volume.id + 1
        // Every record of the old volume is written (writes are synchronous): it needs no
        // O_DIRECT descriptor any more.
        volume.endDirectWrites()
        let next = try VolumeFile(
            creatingAt: configuration.directory + "/" + VolumeFile.fileName(id: id), id: id, size: configuration.volumeSize)
        // Publish it before its records are synced so reads after the batch can find it.
        state.withLock { s in
            s.volumes[id] = next
            s.volumeEnds[id] = 0
        }
        return next
    }

    /// Payloads at least this long get a filler before them when it lets them go to the disk
    /// straight from their buffer: at most a block and a header more on disk (0.4% of 1 MiB).
    static let fillerMinimumPayload = 1 << 20

    /// The bytes of filler (0, or at least a header) that put a record written at `offset` where
    /// its payload's first byte falls at the same place within a block in the file as in memory,
    /// so ``VolumeFile/write(_:at:)`` writes the payload's blocks from the buffer it arrived in
    /// rather than copying them into an aligned one.
    static func fillerSize(before payload: ByteBuffer, at offset: Int) -> Int {
        guard payload.readableBytes >= fillerMinimumPayload else { return 0 }
        let a = VolumeFile.directAlignment
        let address = payload.withUnsafeReadableBytes { Int(bitPattern: $0.baseAddress) }
        guard address % RecordHeader.alignment == 0 else { return 0 }
        let gap = ((address - offset - RecordHeader.size) % a + a) % a
        return gap == 0 || gap >= RecordHeader.size ? gap : gap + a
    }

    private static func writeRecord(_ header: RecordHeader, payload: ByteBuffer, to volume: VolumeFile, at offset: Int) throws(ChunkStoreError) {
        var head = [UInt8](repeating: 0, count: RecordHeader.size)
        head.withUnsafeMutableBytes { header.encode(into: $0) }
        let padding = header.recordSize - RecordHeader.size - payload.readableBytes
        let zeros = [UInt8](repeating: 0, count: padding)
        try head.withUnsafeBytes { h in
            zeros.withUnsafeBytes { z in
                payload.withUnsafeReadableBytes { p in
                    Result { () throws(ChunkStoreError) in try volume.write([h, p, z], at: offset) }
                }
            }
        }.get()
    }

    // MARK: Reading

    static func readRecord(key: ChunkKey, location: ChunkLocation, volume: VolumeFile) -> Result<ByteBuffer, ChunkStoreError> {
        let length = Int(location.length)
        // Header and payload in two reads: one buffer for both would be 4 MiB + 32 bytes, which
        // ByteBuffer rounds up to 8 MiB.
        var header = [UInt8](repeating: 0, count: RecordHeader.size)
        var buffer = ChunkBufferPool.allocator.buffer(capacity: length)
        var failure: ChunkStoreError?
        let headerRead = header.withUnsafeMutableBytes { h in
            Result { () throws(ChunkStoreError) in try volume.read(into: h, at: Int(location.offset)) }
        }
        if case .failure(let error) = headerRead { return .failure(error) }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { b in
            do throws(ChunkStoreError) {
                try volume.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<length]), at: Int(location.offset) + RecordHeader.size)
                return length
            } catch {
                failure = error
                return 0
            }
        }
        if let failure { return .failure(failure) }
        let decoded = header.withUnsafeBytes { RecordHeader.decode($0) }
        guard case .header(let header) = decoded, header.key == key, header.length == location.length, !header.isTombstone else {
            return .failure(.corrupt(key, expected: location.crc, actual: 0))
        }
        let actual = CRC32C.checksum(buffer)
        guard actual == location.crc else { return .failure(.corrupt(key, expected: location.crc, actual: actual)) }
        return .success(buffer)
    }
}

extension [UInt64] {
    /// The index of the first element not below `value`, in a sorted array (binary search).
    fileprivate func firstIndex(atLeast value: UInt64) -> Int {
        var low = 0
        var high = count
        while low < high {
            let mid = (low + high) / 2
            if self[mid] < value { low = mid + 1 } else { high = mid }
        }
        return low
    }
}

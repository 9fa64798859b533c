import ChunkStorage
import Foundation
import NIOCore
import SpeedyCore
import SpeedyTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A store on a filesystem that really fills (a small tmpfs, root only): it turns read-only
/// before a write could fail for want of space, takes writes again by itself when space comes
/// back, and a write that does hit ENOSPC costs nothing acknowledged.
@Suite("Volume store on a full filesystem", .serialized, .enabled(if: ScratchFilesystem.unavailableReason == nil, "\(ScratchFilesystem.unavailableReason ?? "")"))
struct VolumeSpaceTests {
    static let chunk = 1 << 20 - 64

    func configuration(_ fs: ScratchFilesystem, volumeSize: Int = 8 << 20, reserve: UInt64 = 2 << 20) -> VolumeStoreConfiguration {
        VolumeStoreConfiguration(
            directory: fs.path + "/data", volumeSize: volumeSize, maxChunkBytes: 1 << 20, reserveBytes: reserve, capacityBytes: nil,
            maxBatchBytes: 4 << 20)
    }

    /// Writes the filler file `name` of `bytes` (preallocated) on `fs`.
    func fill(_ fs: ScratchFilesystem, _ name: String, bytes: Int) throws {
        let fd = open(fs.path + "/" + name, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw HarnessFailure("open filler: errno \(errno)") }
        defer { close(fd) }
        let rc = posix_fallocate(fd, 0, off_t(bytes))
        guard rc == 0 else { throw HarnessFailure("fallocate filler: errno \(rc)") }
    }

    /// Puts chunks one at a time until the store says it is full; every put made while it said
    /// it was writable must be acknowledged. Returns the keys stored.
    func putUntilFull(_ store: VolumeChunkStore, from first: UInt64, limit: Int = 200) async throws -> [UInt64] {
        var stored: [UInt64] = []
        for id in first..<(first + UInt64(limit)) {
            let before = store.usage()
            guard before.health == .writable else { return stored }
            do {
                _ = try await store.put(ChunkKey(group: 1, fileId: id), data: payload(Self.chunk, seed: id), crc: nil)
                stored.append(id)
            } catch {
                Issue.record("put \(id) refused while the store said it was writable (free \(before.freeBytes)): \(error)")
                return stored
            }
        }
        Issue.record("the store never filled")
        return stored
    }

    @Test func aFillingFilesystemTurnsTheStoreReadOnlyBeforeAWriteFails() async throws {
        // 40 MiB: four 8 MiB volumes fit, a fifth does not.
        let fs = try await ScratchFilesystem.tmpfs(bytes: 40 << 20)
        defer { fs.remove() }
        let store = try VolumeChunkStore(configuration: configuration(fs))
        let stored = try await putUntilFull(store, from: 1)
        let usage = store.usage()
        #expect(usage.health == .full)
        #expect(usage.freeBytes < 2 << 20)
        #expect(stored.count >= 28, "four volumes of about 7 chunks each")
        await #expect(throws: ChunkStoreError.self) {
            try await store.put(ChunkKey(group: 1, fileId: 999), data: payload(Self.chunk, seed: 999), crc: nil)
        }
        for id in stored { #expect(try await store.get(ChunkKey(group: 1, fileId: id)) == payload(Self.chunk, seed: id)) }
        await store.close()
    }

    @Test func freeingTheFilesystemMakesTheStoreWritableAgainWithoutAWrite() async throws {
        let fs = try await ScratchFilesystem.tmpfs(bytes: 40 << 20)
        defer { fs.remove() }
        try fill(fs, "filler", bytes: 12 << 20)
        let store = try VolumeChunkStore(configuration: configuration(fs))
        let stored = try await putUntilFull(store, from: 1)
        #expect(store.usage().health == .full)
        // An operator frees space: the store says so at its next look (each heartbeat looks).
        unlink(fs.path + "/filler")
        #expect(store.usage().health == .writable)
        let more = try await putUntilFull(store, from: 1000)
        #expect(!more.isEmpty)
        for id in stored + more { #expect(store.info(ChunkKey(group: 1, fileId: id)) != nil) }
        await store.close()
    }

    @Test func deletesAndCompactionGiveSpaceBackOnAFullFilesystem() async throws {
        let fs = try await ScratchFilesystem.tmpfs(bytes: 40 << 20)
        defer { fs.remove() }
        let store = try VolumeChunkStore(configuration: configuration(fs))
        let stored = try await putUntilFull(store, from: 1)
        #expect(store.usage().health == .full)
        // Deletes still work on a full store: their tombstones fit in what the reserve kept.
        // The first chunks filled the first volume: delete them until it holds nothing live.
        let firstVolume = store.volumeStats().first!.id
        var deleted = 0
        for id in stored where store.volumeStats().first!.liveBytes > 0 {
            try await store.delete(ChunkKey(group: 1, fileId: id))
            deleted += 1
        }
        #expect(store.usage().health == .full, "tombstones give nothing back")
        _ = try await store.compact(volume: firstVolume, bytesPerSecond: 0)
        // The file's blocks come back once the reader thread that unlinked it lets go of its
        // descriptor, a moment after compaction returns; heartbeats look every second.
        #expect(await eventually { store.usage().health == .writable })
        let more = try await putUntilFull(store, from: 1000)
        #expect(!more.isEmpty)
        for id in stored.dropFirst(deleted) + more { #expect(try await store.get(ChunkKey(group: 1, fileId: id)) == payload(Self.chunk, seed: id)) }
        await store.close()
    }

    /// Another writer takes the filesystem's last bytes while chunks are written: the writes that
    /// hit ENOSPC are refused, the store opens again on the full filesystem, and every chunk that
    /// was acknowledged reads back.
    /// Preallocates files `hog-N` (from N = `first`), 256 KiB each until nothing more fits, then
    /// the last pages one by one; returns the next N.
    func takeTheRest(of fs: ScratchFilesystem, first: Int) async -> Int {
        var piece = first
        for size in [256 << 10, 4096] {
            while true {
                let fd = open(fs.path + "/hog-\(piece)", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                let rc = posix_fallocate(fd, 0, off_t(size))
                close(fd)
                piece += 1
                if rc != 0 { break }
                if size > 4096 { try? await Task.sleep(for: .milliseconds(2)) }
            }
        }
        return piece
    }

    @Test func writesRacingAFillingFilesystemLoseNothingAcknowledged() async throws {
        let fs = try await ScratchFilesystem.tmpfs(bytes: 48 << 20)
        defer { fs.remove() }
        let config = configuration(fs, volumeSize: 4 << 20, reserve: 0)
        let store = try VolumeChunkStore(configuration: config)
        let hog = Task.detached { await takeTheRest(of: fs, first: 0) }
        let acknowledged = await withTaskGroup(of: [UInt64].self) { group in
            for writer in 0..<4 as Range<UInt64> {
                group.addTask {
                    var mine: [UInt64] = []
                    for n in 0..<200 as Range<UInt64> {
                        let id = writer * 1000 + n
                        if (try? await store.put(ChunkKey(group: 1, fileId: id), data: payload(300_000, seed: id), crc: nil)) != nil { mine.append(id) }
                    }
                    return mine
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        let pieces = await hog.value
        #expect(!acknowledged.isEmpty)
        #expect(fs.availableBytes < 4096, "the hog took the rest")
        // Closing could not save the checkpoint: the restart scans, on the filesystem filled again.
        await store.close()
        _ = await takeTheRest(of: fs, first: pieces)
        let reopened = try VolumeChunkStore(configuration: config)
        #expect(reopened.recovery.chunks == acknowledged.count)
        for id in acknowledged { #expect(try await reopened.get(ChunkKey(group: 1, fileId: id)) == payload(300_000, seed: id)) }
        await reopened.close()
    }
}

extension VolumeSpaceTests {
    /// A write that runs out of space half-way (into a hole in its volume: space the filesystem
    /// no longer holds for it) is refused and turns the store read-only until the filesystem has
    /// more room; the next chunk goes over the cut record, and a restart drops what the cut record
    /// left behind and keeps every acknowledged chunk.
    @Test func aWriteCutShortByENOSPCLeavesNothingThatBreaksTheNextOpen() async throws {
        let fs = try await ScratchFilesystem.tmpfs(bytes: 16 << 20)
        defer { fs.remove() }
        let config = configuration(fs, reserve: 0)
        let store = try VolumeChunkStore(configuration: config)
        for id in 1...2 as ClosedRange<UInt64> { _ = try await store.put(ChunkKey(group: 1, fileId: id), data: payload(200_000, seed: id), crc: nil) }
        // Give back the volume's blocks from 8 KiB past its end, then let another writer take them.
        let end = store.volumeStats()[0].end
        let volume = config.directory + "/" + VolumeFile.fileName(id: 1)
        let punch = try await SpawnedProgram.run(
            "/usr/bin/fallocate", ["--punch-hole", "--offset", String(end + 8192), "--length", String((8 << 20) - end - 8192), volume], environment: [:])
        #expect(punch.status == 0, "\(punch.output)")
        _ = await takeTheRest(of: fs, first: 0)
        #expect(store.usage().health == .writable, "the store cannot see the hole")
        await #expect(throws: ChunkStoreError.readOnly(reason: "disk full")) {
            try await store.put(ChunkKey(group: 1, fileId: 3), data: payload(300_000, seed: 3), crc: nil)
        }
        #expect(store.usage().health == .full)
        // Space comes back: writable at the next look, and the next chunk lands where 3 was cut.
        for name in try FileManager.default.contentsOfDirectory(atPath: fs.path) where name.hasPrefix("hog-") { unlink(fs.path + "/" + name) }
        #expect(store.usage().health == .writable)
        _ = try await store.put(ChunkKey(group: 1, fileId: 4), data: payload(1000, seed: 4), crc: nil)
        #expect(store.volumeStats()[0].end == end + RecordHeader.recordSize(payloadLength: 1000))
        await store.close()
        unlink(config.directory + "/index.checkpoint")
        let reopened = try VolumeChunkStore(configuration: config)
        #expect(reopened.recovery.chunks == 3)
        #expect(reopened.info(ChunkKey(group: 1, fileId: 3)) == nil)
        for (id, size) in [(1, 200_000), (2, 200_000), (4, 1000)] as [(UInt64, Int)] {
            #expect(try await reopened.get(ChunkKey(group: 1, fileId: id)) == payload(size, seed: id))
        }
        _ = try await reopened.put(ChunkKey(group: 1, fileId: 5), data: payload(300_000, seed: 5), crc: nil)
        #expect(try await reopened.get(ChunkKey(group: 1, fileId: 5)) == payload(300_000, seed: 5))
        await reopened.close()
    }
}

/// Polls `condition` every 10 ms for up to 2 s.
func eventually(_ condition: () -> Bool) async -> Bool {
    for _ in 0..<200 {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

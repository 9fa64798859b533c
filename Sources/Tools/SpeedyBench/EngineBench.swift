import ArgumentParser
import ChunkStorage
import Foundation
import NIOCore
import SpeedyCore

/// Writes and reads chunks straight through the storage engine (no network), and runs `dd` on
/// the same directory as the disk's own limit.
struct EngineBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Chunk writes (durable) and reads per second through the storage engine, next to dd.",
        discussion: """
            Writes COUNT chunks of CHUNK bytes with CONCURRENCY writers through a VolumeChunkStore in \
            DIR (each acknowledged only after fsync), reads them all back with CRC checks, then runs \
            dd on the same directory: `dd bs=CHUNK oflag=dsync` (every write synced, the limit for \
            one writer) and `dd bs=CHUNK conv=fdatasync` (one sync at the end, the streaming limit). \
            Reads come from the page cache unless --drop-caches is given and allowed.
            """
    )

    @Option(help: "Directory on the disk to measure (a fresh subdirectory is made and removed).")
    var dir = "."

    @Option(help: "Chunk size.")
    var chunkSize = "4M"

    @Option(help: "Number of chunks.")
    var count = 256

    @Option(help: "Concurrent writers and readers.")
    var concurrency = 8

    @Flag(help: "Drop the page cache before reading (needs root).")
    var dropCaches = false

    @Flag(help: "Skip the dd reference runs.")
    var noDd = false

    func run() async throws {
        guard let size = ByteSize.parse(chunkSize), size > 0, size <= 64 << 20 else {
            throw ValidationError("--chunk-size must be between 1 byte and 64 MiB")
        }
        guard count > 0, concurrency > 0 else { throw ValidationError("--count and --concurrency must be positive") }
        let work = URL(fileURLWithPath: dir).appendingPathComponent("speedy-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }

        let chunk = Int(size)
        let store = try VolumeChunkStore(
            configuration: .init(directory: work + "/store", volumeSize: 1 << 30, maxChunkBytes: max(chunk, 1 << 20), reserveBytes: 0))
        var random = SystemRandomNumberGenerator()
        let payloads = (0..<min(count, 16)).map { _ in ByteBuffer(bytes: (0..<chunk).map { _ in UInt8.random(in: 0...255, using: &random) }) }

        print("speedy-bench engine: \(count) chunks of \(ByteSize.format(UInt64(chunk))), concurrency \(concurrency), dir \(dir)")
        print("CRC-32C: \(CRC32C.isHardwareAccelerated ? "SSE4.2 instruction" : "table")")
        let write = try await Phase.run(name: "engine write+fsync", count: count, concurrency: concurrency, bytesEach: chunk) { i in
            _ = try await store.put(ChunkKey(group: 1, fileId: UInt64(i + 1)), data: payloads[i % payloads.count], crc: nil)
        }
        let syncs = store.usage().syncCount
        print(write.line + "  (\(syncs) fsyncs for \(count) writes)")
        if dropCaches {
            let ok = (try? "3\n".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)) != nil
            print(ok ? "page cache dropped" : "could not drop the page cache; reads are from memory")
        }
        let read = try await Phase.run(name: "engine read+crc", count: count, concurrency: concurrency, bytesEach: chunk) { i in
            let data = try await store.get(ChunkKey(group: 1, fileId: UInt64(i + 1)))
            precondition(data.readableBytes == chunk)
        }
        print(read.line)
        await store.close()

        if !noDd {
            for (label, flag) in [("dd oflag=dsync", "oflag=dsync"), ("dd conv=fdatasync", "conv=fdatasync")] {
                if let mbps = dd(to: work + "/dd.bin", blockSize: chunk, count: count, flag: flag) {
                    print("\(label.padding(20)) \(String(count).padding(6)) ops  \(ByteSize.formatDecimal(mbps, places: 1).padding(8)) MB/s")
                }
                try? FileManager.default.removeItem(atPath: work + "/dd.bin")
            }
        }
    }

    /// Runs dd and returns its MB/s (decimal), or nil when dd fails.
    private func dd(to path: String, blockSize: Int, count: Int, flag: String) -> Double? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/dd")
        process.arguments = ["if=/dev/zero", "of=\(path)", "bs=\(blockSize)", "count=\(count)", flag]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        let start = Date()
        guard (try? process.run()) != nil else { return nil }
        _ = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let seconds = Date().timeIntervalSince(start)
        guard process.terminationStatus == 0, seconds > 0 else { return nil }
        return Double(blockSize * count) / 1_000_000 / seconds
    }
}

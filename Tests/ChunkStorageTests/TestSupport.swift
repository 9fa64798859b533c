import ChunkStorage
import Foundation
import NIOCore
import SpeedyCore
import SpeedyTestSupport

/// `count` bytes of a repeatable pattern that differs per `seed`.
func payload(_ count: Int, seed: UInt64) -> ByteBuffer {
    ByteBuffer(bytes: TestBytes.random(count, seed: Int(truncatingIfNeeded: seed)))
}


/// Overwrites bytes of a file at an offset (to damage a volume on purpose).
func overwrite(path: String, at offset: Int, with bytes: [UInt8]) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seek(toOffset: UInt64(offset))
    try handle.write(contentsOf: Data(bytes))
    try handle.synchronize()
    try handle.close()
}

func readBytes(path: String, at offset: Int, count: Int) throws -> [UInt8] {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    try handle.seek(toOffset: UInt64(offset))
    let data = try handle.read(upToCount: count) ?? Data()
    try handle.close()
    return [UInt8](data)
}

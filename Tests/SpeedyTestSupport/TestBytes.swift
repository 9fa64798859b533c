/// Test data, made quickly.
///
/// Tests are built without optimization, where `(0..<n).map { … }` makes a few megabytes a
/// second: a test building a 64 MiB blob that way holds one of the two threads of the
/// cooperative pool for many seconds, and every other test's awaits (a PostgreSQL lease, an HTTP
/// response) wait behind it until their own timeouts fire. This writes a word at a time.
public enum TestBytes {
    /// `count` pseudo-random bytes (SplitMix64): the same for the same `seed` on every run, different
    /// for different seeds; a shorter count gives a prefix of a longer one.
    public static func random(_ count: Int, seed: Int) -> [UInt8] {
        precondition(count >= 0, "a negative count")
        return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var generator = SeededGenerator(seed: UInt64(bitPattern: Int64(seed)) &* 0xD1B5_4A32_D192_ED03)
            if let base = UnsafeMutableRawPointer(buffer.baseAddress) {
                var offset = 0
                while offset < count {
                    var word = generator.next().littleEndian
                    let length = min(8, count - offset)
                    withUnsafeBytes(of: &word) { (base + offset).copyMemory(from: $0.baseAddress!, byteCount: length) }
                    offset += length
                }
            }
            initialized = count
        }
    }
}

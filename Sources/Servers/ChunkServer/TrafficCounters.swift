import Synchronization

/// Cumulative traffic since start, read by every heartbeat; atomics, since every request bumps them.
final class TrafficCounters: Sendable {
    let readBytes = Atomic<UInt64>(0)
    let writeBytes = Atomic<UInt64>(0)
    let readOps = Atomic<UInt64>(0)
    let writeOps = Atomic<UInt64>(0)

    func recordRead(bytes: Int) {
        readBytes.add(UInt64(bytes), ordering: .relaxed)
        readOps.add(1, ordering: .relaxed)
    }

    func recordWrite(bytes: Int) {
        writeBytes.add(UInt64(bytes), ordering: .relaxed)
        writeOps.add(1, ordering: .relaxed)
    }
}

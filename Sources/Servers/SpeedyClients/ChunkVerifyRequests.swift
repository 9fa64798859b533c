import SpeedyCore
import Synchronization

/// The "check your copy" requests a reader sends members whose unchecked chunk failed its CRC
/// (``SpeedyHeader/readVerify``): at most one at a time per member and chunk, and a few at
/// once in all, so that a link that garbles every chunk cannot turn each read into another.
public final class ChunkVerifyRequests: Sendable {
    private let inFlight = Mutex<Set<String>>([])
    /// How many checks may run at once; more are dropped (the chunkserver's scrub finds the rest).
    public let limit: Int

    /// The process's table, shared by every reader in it.
    public static let shared = ChunkVerifyRequests()

    /// Creates a table allowing `limit` checks at once.
    public init(limit: Int = 4) {
        self.limit = limit
    }

    /// Runs `check` in the background for chunk `key` at `member`, unless one is running for the
    /// same pair or ``limit`` are running. Returns whether it was started.
    @discardableResult
    public func start(_ key: ChunkKey, at member: String, _ check: @escaping @Sendable () async -> Void) -> Bool {
        let id = "\(member) \(key)"
        let admitted = inFlight.withLock { running in
            guard running.count < limit, !running.contains(id) else { return false }
            running.insert(id)
            return true
        }
        guard admitted else { return false }
        Task.detached {
            await check()
            _ = self.inFlight.withLock { $0.remove(id) }
        }
        return true
    }

    /// Checks running now.
    public var running: Int { inFlight.withLock { $0.count } }
}

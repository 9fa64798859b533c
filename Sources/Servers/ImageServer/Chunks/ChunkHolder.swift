import HTTPTypes
import SpeedyCore

/// Keeps the chunks a request has written referenced in the metadata while the request still
/// streams, so garbage collection never takes them for the leftovers of a failed write.
///
/// Every chunk is held in its upload session (``MetadataStore/holdChunks(_:upload:)``) within
/// `interval` of being written, and no hold or commit is made for a chunk whose write began more
/// than `deadline` ago: past it, the collector may already count the chunk as garbage, so the
/// request fails instead (docs/gc.md has the argument). A request without a session (a whole blob
/// in one POST) opens one the first time it must hold something.
actor ChunkHolder {
    /// Where a request's session comes from.
    enum Session: Sendable {
        /// The upload session the request belongs to.
        case known(String)
        /// None yet: `open` creates one when the first hold is due.
        case lazy(open: @Sendable () async throws -> String)
    }


    private let meta: any MetadataStore
    private let interval: Duration
    private let deadline: Duration
    private var session: Session
    private var unheld: [(ref: ChunkRef, started: ContinuousClock.Instant)] = []
    /// The session this holder opened itself, which must end with its request if that fails.
    private(set) var opened: String?

    /// Creates a holder for one request.
    init(meta: any MetadataStore, session: Session, interval: Duration, deadline: Duration) {
        self.meta = meta
        self.session = session
        self.interval = interval
        self.deadline = deadline
    }

    /// The session id, if the request has one (or had to open one).
    var sessionId: String? {
        if case .known(let id) = session { return id }
        return nil
    }

    /// Notes a chunk written; its write began at `started`.
    func written(_ ref: ChunkRef, started: ContinuousClock.Instant) {
        unheld.append((ref, started))
    }

    /// Holds the chunks written so far once the oldest has waited `interval`.
    func holdIfDue() async throws {
        guard let oldest = unheld.map(\.started).min(), ContinuousClock.now - oldest >= interval else { return }
        try await holdAll()
    }

    /// Holds every chunk written so far now, opening the session if there is none yet: before
    /// anything that may take long while the chunks are not yet part of a blob.
    func holdAll() async throws {
        guard !unheld.isEmpty else { return }
        try checkDeadline()
        let id: String
        switch session {
        case .known(let known): id = known
        case .lazy(let open):
            id = try await open()
            session = .known(id)
            opened = id
        }
        let refs = unheld.map(\.ref)
        try await meta.holdChunks(refs, upload: id)
        unheld.removeAll { held in refs.contains(held.ref) }
    }

    /// Throws when a chunk not yet held began its write more than `deadline` ago: call it right
    /// before the commit that references the chunks.
    func checkDeadline() throws(OCIError) {
        if let oldest = unheld.map(\.started).min(), ContinuousClock.now - oldest >= deadline {
            // The metaserver was too slow to record the chunks in time: the push must be retried.
            var error = OCIError(
                .unavailable,
                "a chunk of this upload could not be recorded within \(deadline) of its write (the metaserver is slow); retry the push")
            error.headers[.retryAfter] = "5"
            throw error
        }
    }
}

import Logging
import SpeedyClients
import SpeedyCore
import Synchronization

/// Logs why the master refuses this server's heartbeats (409: its zone is taken in its group,
/// or it was removed from the cluster): at once, then once a minute while it lasts, not every
/// heartbeat; and when the master takes them again. The heartbeats go on meanwhile, so the server
/// joins as soon as an operator fixes the cause (another `--zone`, the master's `--allow-same-zone`).
final class RefusalLog: Sendable {
    /// How often a refusal that lasts is logged again.
    static let repeatEvery: Duration = .seconds(60)

    private let logger: Logger
    /// The refusal last logged and when; nil while heartbeats are taken.
    private let last = Mutex<(message: String, at: ContinuousClock.Instant)?>(nil)

    /// A log writing to `logger`.
    init(logger: Logger) {
        self.logger = logger
    }

    /// Notes a refused heartbeat; logs it when it is new, differs, or was logged a minute ago.
    func refused(_ error: ServiceError) {
        guard case .status(_, _, let body) = error else { return }
        let message = body.map { "\($0.code): \($0.message)" } ?? error.description
        let now = ContinuousClock.now
        let due = last.withLock { last in
            if let previous = last, previous.message == message, now - previous.at < Self.repeatEvery { return false }
            last = (message, now)
            return true
        }
        if due { logger.error("the master refuses this chunkserver's heartbeats (it is left out of the cluster map, so no client uses it): \(message); asking again every heartbeat") }
    }

    /// Notes a heartbeat taken; logs it when the previous one was refused.
    func accepted() {
        let wasRefused = last.withLock { last in
            defer { last = nil }
            return last != nil
        }
        if wasRefused { logger.notice("the master takes this chunkserver's heartbeats again") }
    }
}

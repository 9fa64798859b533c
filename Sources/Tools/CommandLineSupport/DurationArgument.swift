import ArgumentParser
import SpeedyCore

/// A duration on the command line: `500ms`, `90s`, `10m`, `1h`, `7d` (a bare number is seconds).
public struct DurationArgument: ExpressibleByArgument, Sendable {
    /// The duration.
    public let duration: Duration

    public init?(argument: String) {
        guard let duration = DurationText.parse(argument) else { return nil }
        self.duration = duration
    }

    /// Wraps a duration (for defaults).
    public init(_ duration: Duration) { self.duration = duration }

    public var defaultValueDescription: String { DurationText.format(duration) }
}

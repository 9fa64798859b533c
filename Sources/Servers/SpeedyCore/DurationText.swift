/// Durations as people write them on a command line: `500ms`, `90s`, `10m`, `1h`, `7d`; a bare
/// number is seconds.
public enum DurationText {
    private static let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000),
    ]

    /// The duration `text` names; nil when it is not one, is negative, or is over 100 years.
    public static func parse(_ text: String) -> Duration? {
        let trimmed = text.trimmingWhitespace()
        for (suffix, unit) in units.sorted(by: { $0.suffix.count > $1.suffix.count }) where trimmed.hasSuffix(suffix) {
            return make(String(trimmed.dropLast(suffix.count)), unit)
        }
        return make(trimmed, 1000)
    }

    private static func make(_ number: String, _ unit: Int64) -> Duration? {
        guard let value = Double(number), value.isFinite, value >= 0, value * Double(unit) <= 100 * 365 * 86_400_000 else { return nil }
        return .milliseconds(Int64((value * Double(unit)).rounded()))
    }

    /// The largest whole unit that fits: `1h`, `90s`, `1500ms`.
    public static func format(_ duration: Duration) -> String {
        let ms = duration / .milliseconds(1)
        for (suffix, unit) in units.reversed() where ms >= Double(unit) && (ms / Double(unit)).rounded() == ms / Double(unit) {
            return "\(Int64(ms / Double(unit)))\(suffix)"
        }
        return "\(Int64(ms))ms"
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var view = Substring(self)
        while view.first?.isWhitespace == true { view.removeFirst() }
        while view.last?.isWhitespace == true { view.removeLast() }
        return String(view)
    }
}

/// How a piece of text is drawn; the terminal layer maps each to colours or attributes.
public enum TextStyle: Sendable, Equatable, CaseIterable {
    case normal, title, heading, dim, selected, banner, healthy, degraded, readOnly, down, transferring, accent
}

/// A run of text in one style.
public struct Span: Sendable, Equatable {
    public var text: String
    public var style: TextStyle

    public init(_ text: String, _ style: TextStyle = .normal) {
        self.text = text
        self.style = style
    }
}

/// One screen line: spans drawn left to right, clipped to the width.
public struct ScreenLine: Sendable, Equatable {
    public var spans: [Span]

    public init(_ spans: [Span] = []) { self.spans = spans }

    /// The text without styles.
    public var text: String { spans.map(\.text).joined() }

    /// Appends text.
    public mutating func add(_ text: String, _ style: TextStyle = .normal) { spans.append(Span(text, style)) }

    /// The line cut to `width` columns (one column per character) and padded with spaces.
    public func fitted(to width: Int, fill: TextStyle? = nil) -> ScreenLine {
        var out = ScreenLine()
        var used = 0
        for span in spans where used < width {
            let room = width - used
            let piece = span.text.count > room ? String(span.text.prefix(room)) : span.text
            out.spans.append(Span(piece, fill ?? span.style))
            used += piece.count
        }
        if used < width { out.spans.append(Span(String(repeating: " ", count: width - used), fill ?? .normal)) }
        return out
    }
}

/// The characters the dashboard draws with: Unicode where the terminal can show it, ASCII on
/// terminals without colours or UTF-8 (TERM=vt100, NO_COLOR).
public struct Glyphs: Sendable {
    public var healthy: String
    public var recovering: String
    public var degraded: String
    public var readOnly: String
    public var down: String
    public var barFull: Character
    public var barEmpty: Character
    public var spark: [Character]
    public var rule: Character
    public var separator: String

    public static let unicode = Glyphs(
        healthy: "●", recovering: "◐", degraded: "▲", readOnly: "■", down: "✖", barFull: "█", barEmpty: "░",
        spark: Array("▁▂▃▄▅▆▇█"), rule: "─", separator: " │ ")
    public static let ascii = Glyphs(
        healthy: "+", recovering: "~", degraded: "!", readOnly: "=", down: "x", barFull: "#", barEmpty: ".",
        spark: Array("_.-:=+*#"), rule: "-", separator: " | ")

    public init(healthy: String, recovering: String, degraded: String, readOnly: String, down: String, barFull: Character, barEmpty: Character, spark: [Character], rule: Character, separator: String) {
        self.healthy = healthy
        self.recovering = recovering
        self.degraded = degraded
        self.readOnly = readOnly
        self.down = down
        self.barFull = barFull
        self.barEmpty = barEmpty
        self.spark = spark
        self.rule = rule
        self.separator = separator
    }
}

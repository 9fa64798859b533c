/// Parses and prints byte sizes the way operators write them: `512M`, `1G`, `4MiB`, `1048576`.
public enum ByteSize {
    /// Parses a size with an optional K/M/G/T suffix (powers of 1024, `B`/`iB` optional).
    public static func parse(_ text: String) -> UInt64? {
        var t = text.trimmingCharacters(in: " ").uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var multiplier: UInt64 = 1
        if let last = t.last, let unit = units[last] {
            multiplier = unit
            t.removeLast()
        }
        guard let value = UInt64(t) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: multiplier)
        return overflow ? nil : product
    }

    /// `1536` → `1.5 KiB`.
    public static func format(_ bytes: UInt64) -> String { format(Double(bytes)) }

    /// `1536.0` → `1.5 KiB`.
    public static func format(_ bytes: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = bytes
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(value)) B" }
        return formatDecimal(value, places: value < 10 ? 2 : 1) + " " + units[unit]
    }

    /// A fixed number of decimal places without Foundation's formatters.
    public static func formatDecimal(_ value: Double, places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (value * scale).rounded()
        let whole = Int64(scaled / scale)
        let fraction = Int64(abs(scaled) - Double(abs(whole)) * scale)
        if places == 0 { return String(whole) }
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: max(0, places - digits.count)) + digits
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s.removeFirst() }
        while s.last == set { s.removeLast() }
        return String(s)
    }
}

/// A failure domain: chunkservers that can fail together (one host, one rack, one power feed).
/// Members of one group go in different zones, so losing a zone loses one copy of a chunk at most.
public enum FailureZone {
    /// The longest zone name (a DNS label's limit, so a host's short name fits).
    public static let maxLength = 63

    /// Whether `name` may name a zone (`--zone`): 1 to 63 characters, each a letter, a digit, `.`,
    /// `_` or `-`, so it reads the same in logs, JSON and a shell.
    public static func isValidName(_ name: String) -> Bool {
        (1...maxLength).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                    true
                case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
                default: false
                }
            }
    }

    /// The zone of a server given none: the host of its address `HOST:PORT`, lower-cased, so
    /// chunkservers on one machine share a zone. An address that does not parse is its own zone.
    public static func defaultZone(ofAddress addr: String) -> String {
        (HostPort(parsing: addr)?.host ?? addr).lowercased()
    }
}

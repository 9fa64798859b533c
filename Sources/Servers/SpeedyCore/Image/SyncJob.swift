/// One end of a sync: a registry's base URL, with the files of its login and CA (read when a run
/// starts, so a rotated password needs no restart; `SyncEndpoint.makeClient()` in Replication).
public struct SyncEndpoint: Sendable, Equatable {
    /// The registry's base URL, `https://registry.example:5000`.
    public var url: String
    /// A file whose first line is `USER:PASSWORD`; nil: anonymous.
    public var credentialsFile: String?
    /// The PEM CA of the registry's certificate; nil: the system's roots.
    public var caFile: String?

    /// An endpoint; its files are read when a client is made.
    public init(url: String, credentialsFile: String? = nil, caFile: String? = nil) {
        self.url = url
        self.credentialsFile = credentialsFile
        self.caFile = caFile
    }
}

/// A sync the metaserver runs on a schedule (docs/registry.md, "Replication"): the rules of
/// `chunktool sync`, between two registries, every so often.
public struct SyncJob: Sendable, Equatable {
    /// Its name, in the event log, the console and the state file.
    public var name: String
    /// Time from the end of one run to the start of the next.
    public var every: Duration
    /// Whether destination tags the source no longer has are deleted (`--delete`).
    public var deleteMissing: Bool
    /// Where from.
    public var source: SyncEndpoint
    /// Where to.
    public var destination: SyncEndpoint
    /// What, in order.
    public var rules: [SyncRule]

    /// A job; ``SyncJobFile`` makes them from the sync file, which checks what this does not.
    public init(name: String, every: Duration, deleteMissing: Bool, source: SyncEndpoint, destination: SyncEndpoint, rules: [SyncRule]) {
        self.name = name
        self.every = every
        self.deleteMissing = deleteMissing
        self.source = source
        self.destination = destination
        self.rules = rules
    }

    /// Whether `name` is one a job may have: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
    public static func isValidName(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count), let first = name.utf8.first, isLowerAlphanumeric(first) else { return false }
        return name.utf8.allSatisfy { isLowerAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") }
    }

    private static func isLowerAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

/// Why a sync job, its file or one of its files could not be used.
public struct SyncJobError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, with the line number for a line of the file.
    public let description: String
    /// An error saying `description`.
    public init(_ description: String) { self.description = description }
}

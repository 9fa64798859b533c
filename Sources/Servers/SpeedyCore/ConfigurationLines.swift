extension StringProtocol {
    /// The lines of a configuration file as an editor counts them: split at LF or CRLF. Swift
    /// keeps "\r\n" as one `Character`, so splitting at "\n" alone reads a file saved with CRLF
    /// line ends as one long line.
    public var configurationLines: [SubSequence] {
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }
}

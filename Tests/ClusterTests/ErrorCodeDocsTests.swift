import Foundation
import SpeedyCore
import Testing

/// docs/api.md's table of error codes is the registry (``InternalErrorCode``) written out: a code
/// added, renamed or sent with another status fails here until the docs say so.
@Suite("Error code docs")
struct ErrorCodeDocsTests {
    static let begin = "<!-- internal-error-codes: generated from InternalErrorCode; ErrorCodeDocsTests checks it -->"
    static let end = "<!-- end internal-error-codes -->"

    /// The table as the registry has it.
    static var table: String {
        var lines = ["| status | code | meaning |", "| --- | --- | --- |"]
        for code in InternalErrorCode.allCases.sorted(by: { ($0.status, $0.rawValue) < ($1.status, $1.rawValue) }) {
            lines.append("| \(code.status) | `\(code.rawValue)` | \(code.meaning) |")
        }
        return lines.joined(separator: "\n")
    }

    @Test func theDocsListEveryInternalCodeWithItsStatus() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let docs = try String(contentsOf: root.appendingPathComponent("docs/api.md"), encoding: .utf8)
        let start = try #require(docs.range(of: Self.begin), "docs/api.md has no generated table")
        let stop = try #require(docs.range(of: Self.end, range: start.upperBound..<docs.endIndex))
        let written = docs[start.upperBound..<stop.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(written == Self.table, "docs/api.md's error table differs from InternalErrorCode; put this between the markers:\n\(Self.table)")
        #expect(Set(InternalErrorCode.allCases.map(\.rawValue)).count == InternalErrorCode.allCases.count, "a code declared twice")
    }
}

import Foundation
import HTTPTypes
import Testing

@testable import ImageServer
import SpeedyCore

/// docs/registry.md's table of the registry's error codes is ``OCIErrorCode`` written out: a code
/// added, renamed or sent with another status fails here until the docs say so.
@Suite("OCI error code docs")
struct OCIErrorCodeDocsTests {
    static let begin = "<!-- oci-error-codes: generated from OCIErrorCode; OCIErrorCodeDocsTests checks it -->"
    static let end = "<!-- end oci-error-codes -->"

    /// The table as the enum has it: a row per code and status, the usual status first.
    static var table: String {
        var lines = ["| code | status | meaning | when |", "| --- | --- | --- | --- |"]
        for code in OCIErrorCode.allCases {
            for use in code.uses {
                lines.append("| `\(code.rawValue)` | \(use.status.code) | \(code.meaning) | \(use.when) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    @Test func theDocsListEveryOCICodeWithItsStatuses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let docs = try String(contentsOf: root.appendingPathComponent("docs/registry.md"), encoding: .utf8)
        let start = try #require(docs.range(of: Self.begin), "docs/registry.md has no generated table")
        let stop = try #require(docs.range(of: Self.end, range: start.upperBound..<docs.endIndex))
        let written = docs[start.upperBound..<stop.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(written == Self.table, "docs/registry.md's error table differs from OCIErrorCode; put this between the markers:\n\(Self.table)")
    }

    /// Codes are the spec's form (upper case and underscores), each once; an override really
    /// changes the status, and an answer built with one carries its code and its status.
    @Test func everyCodeAndOverrideIsWellFormed() {
        let raw = OCIErrorCode.allCases.map(\.rawValue)
        #expect(Set(raw).count == raw.count, "a code declared twice")
        for code in raw { #expect(code.allSatisfy { $0 == "_" || ("A"..."Z").contains($0) }, "\(code)") }
        for override in OCIErrorCode.StatusOverride.allCases {
            #expect(override.status != override.code.status, "\(override) sends \(override.code)'s usual status")
            let error = OCIError(override.code, "m", status: override)
            #expect(error.status == override.status && error.code == override.code)
        }
        let usual = OCIError(.blobUnknown, "m")
        #expect(usual.status == .notFound)
    }

    /// The statuses clients see stay what they were before the codes became an enum.
    @Test func theWireStatusesAreUnchanged() {
        #expect(OCIError.storage(.noWritableGroup(tried: [], lastError: nil)).status.code == 507)
        #expect(OCIError.storage(.noFileIds("x")).status == .serviceUnavailable)
        #expect(OCIError.metadata(.unavailable("x")).status == .serviceUnavailable)
        #expect(OCIError.metadata(.unavailable("x")).code == .unsupported)
        #expect(OCIError.metadata(.invalid("x")).status == .badRequest)
        #expect(OCIError.metadata(.uploadOffsetMismatch(id: "id", actual: 3)).status == .rangeNotSatisfiable)
        #expect(OCIError.methodNotAllowed("x").status == .methodNotAllowed)
        #expect(OCIError.busy(BudgetExhausted(waited: .seconds(1))).status == .serviceUnavailable)
        #expect(OCIError.manifestBlobUnknown(blob: "d", in: "n").status == .badRequest)
    }
}

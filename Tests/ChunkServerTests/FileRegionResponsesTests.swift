import HTTPTypes
import Hummingbird
import ServerSupport
import Testing

/// The table of file ranges waiting for their response heads: a range whose response was dropped
/// before its head went out (a client that left, perhaps on purpose, over and over) is removed
/// soon after; a range whose response is still on its way stays.
@Suite("File region responses")
struct FileRegionResponsesTests {
    @Test func rangesOfDroppedResponsesAreRemovedAndLiveOnesStay() async throws {
        let regions = FileRegionResponses(orphanGrace: .milliseconds(20), sweepInterval: .zero)
        func response() -> Response {
            regions.response(headers: [:], offset: 0, length: 10, open: { -1 })
        }
        var live = response()
        for _ in 0..<100 { _ = response() }  // dropped at once, as a response whose client left
        #expect(regions.pendingCount == 101)
        try await Task.sleep(for: .milliseconds(50))
        live.headers[.contentType] = "application/octet-stream"
        let second = response()  // registering sweeps
        #expect(regions.pendingCount == 2, "the live response's range and the new one")
        #expect(live.headers[.contentLength] == "10" && second.headers[.contentLength] == "10")
        #expect(live.body.contentLength == 10, "the body's length is known, for the byte counts")
    }
}

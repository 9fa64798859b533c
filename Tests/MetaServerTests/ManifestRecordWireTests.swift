import Foundation
import SpeedyCore
import Testing

/// How a manifest crosses from the metaserver to the imageservers.
@Suite("Manifest records on the wire")
struct ManifestRecordWireTests {
    let content = Array("{\"schemaVersion\":2,\"layers\":[]}".utf8) + [0, 255, 10]

    @Test func contentTravelsAsBase64WhenAskedAndComesBackExactly() throws {
        let record = ManifestRecord(repository: "a/b", digest: Digest.of(content), mediaType: "application/vnd.oci.image.manifest.v1+json", content: content)
        let encoder = WireJSON.encoder()
        encoder.userInfo[ManifestRecord.base64ContentKey] = true
        let json = try encoder.encode(record)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        #expect(object["content"] as? String == Data(content).base64EncodedString())
        #expect(try WireJSON.decoder().decode(ManifestRecord.self, from: json) == record)
        // Unasked, as every release reads it: an array of numbers.
        let plain = try WireJSON.encoder().encode(record)
        let array = try #require(try JSONSerialization.jsonObject(with: plain) as? [String: Any])
        #expect((array["content"] as? [Int])?.map(UInt8.init) == content)
        #expect(try WireJSON.decoder().decode(ManifestRecord.self, from: plain) == record)
    }

    @Test func anOlderMetaserversArrayOfNumbersIsStillRead() throws {
        let numbers = content.map(String.init).joined(separator: ",")
        let json = "{\"repository\":\"a/b\",\"digest\":\"\(Digest.of(content))\",\"mediaType\":\"m\",\"content\":[\(numbers)]}"
        #expect(try WireJSON.decoder().decode(ManifestRecord.self, from: Data(json.utf8)).content == content)
        let broken = "{\"repository\":\"a/b\",\"digest\":\"\(Digest.of(content))\",\"mediaType\":\"m\",\"content\":\"not base64!\"}"
        #expect(throws: DecodingError.self) { try WireJSON.decoder().decode(ManifestRecord.self, from: Data(broken.utf8)) }
    }
}

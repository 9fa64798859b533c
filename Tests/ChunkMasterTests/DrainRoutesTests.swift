import ChunkMaster
import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import SpeedyCore
import Testing

/// `POST` and `DELETE /v1/groups/{id}/drain` in process: the flag in the answer, the snapshot
/// and the event log, and the refusals.
extension AdminRoutesTests {
    @Test func aDrainIsSetUndoneAndRefusedForUnknownGroups() async throws {
        try await withMaster { client, master in
            _ = try await client.execute(uri: "/v1/groups", method: .post, body: try json(GroupCreation(id: 5)))
            let set = try await client.execute(uri: "/v1/groups/5/drain", method: .post)
            #expect(set.status == .ok)
            let group = try WireJSON.decoder().decode(GroupSnapshot.self, from: Data(set.body.readableBytesView))
            #expect(group.draining == true && group.drainingSinceMs != nil)
            #expect(master.snapshot().groups.first?.draining == true)
            let events = try WireJSON.decoder().decode(EventPage.self, from: Data(try await client.execute(uri: "/v1/events?limit=100", method: .get).body.readableBytesView))
            #expect(events.events.contains { $0.kind == "group-drain" && $0.group == 5 })
            let undone = try await client.execute(uri: "/v1/groups/5/drain", method: .delete)
            #expect(try WireJSON.decoder().decode(GroupSnapshot.self, from: Data(undone.body.readableBytesView)).draining == nil)
            for (uri, status, code) in [("/v1/groups/77/drain", 404, InternalErrorCode.groupUnknown), ("/v1/groups/x/drain", 400, .badRequest)] {
                let response = try await client.execute(uri: uri, method: .post)
                #expect(response.status.code == status, "\(uri)")
                #expect(errorCode(response) == code.rawValue, "\(uri)")
            }
        }
    }
}

import Foundation
import SpeedyCore
import Synchronization

/// The group this chunkserver serves: fixed by `--group`, or, for a spare (`--spare`), none
/// (group 0) until the master gives it one to replace a dead member.
///
/// An assignment is written to `group` in the data directory before it takes effect, so a spare
/// that restarts mid-fill comes back in its group, whatever its command line says.
final class GroupMembership: Sendable {
    /// The group of a spare that has none yet.
    static let spareGroup = HeartbeatReport.spareGroup

    /// Whether the server was started as a spare (kept in heartbeats after it is assigned, so
    /// the master knows the fill is its to drive).
    let startedAsSpare: Bool
    private let current: Atomic<UInt32>
    private let path: String

    /// The membership for `configured` (``spareGroup`` with `--spare`), or the group an earlier
    /// assignment wrote in `directory`.
    init(configured: UInt32, spare: Bool, directory: String) throws {
        path = directory + "/group"
        startedAsSpare = spare
        var group = configured
        if spare, let text = try? String(contentsOfFile: path, encoding: .utf8) {
            guard let saved = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw MembershipError(description: "\(path) should hold a group number, not '\(text.prefix(40))'")
            }
            group = saved
        }
        current = Atomic(group)
    }

    /// A member of `group` for good (`--group`).
    init(fixed group: UInt32) {
        path = ""
        startedAsSpare = false
        current = Atomic(group)
    }

    /// The group now; ``spareGroup`` while a spare waits.
    var group: UInt32 { current.load(ordering: .acquiring) }

    /// Whether this is a spare with no group yet.
    var isWaiting: Bool { group == Self.spareGroup }

    /// Takes the group the master assigned; true when it changed. Only a waiting spare changes
    /// group: a member's group is for an operator to change, by moving its data.
    func assign(_ group: UInt32) throws -> Bool {
        guard startedAsSpare, isWaiting, group != Self.spareGroup else { return false }
        try "\(group)\n".write(toFile: path, atomically: true, encoding: .utf8)
        current.store(group, ordering: .releasing)
        return true
    }

    struct MembershipError: Error, CustomStringConvertible {
        let description: String
    }
}

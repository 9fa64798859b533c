import Foundation

/// A fresh directory of its own under the system's temporary directory, made at once; `remove()`
/// deletes it with everything in it. Every test that needs a place on disk takes one of these.
public struct TemporaryDirectory: Sendable {
    /// The directory's absolute path.
    public let path: String

    /// Makes `…/speedy-PURPOSE-UUID`.
    public init(_ purpose: String = "test") throws {
        path = NSTemporaryDirectory() + "speedy-\(purpose)-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// Deletes the directory and what it holds; a directory already gone is not an error.
    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

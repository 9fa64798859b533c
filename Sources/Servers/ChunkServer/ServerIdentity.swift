import Foundation

/// The chunkserver's stable id, kept in `server-id` in its data directory so it survives
/// restarts and address changes: the master tracks servers by it.
enum ServerIdentity {
    /// Returns the id in `directory`, creating a random `cs-xxxxxxxx` one on first start, or
    /// recording `requested` when given.
    static func load(directory: String, requested: String?) throws -> String {
        let path = directory + "/server-id"
        let existing = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let requested {
            if let existing, !existing.isEmpty, existing != requested {
                throw IdentityError.mismatch(stored: existing, requested: requested, path: path)
            }
            try (requested + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            return requested
        }
        if let existing, !existing.isEmpty { return existing }
        let id = "cs-" + String(UInt32.random(in: 0...UInt32.max), radix: 16).leftPadded(to: 8)
        try (id + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return id
    }

    enum IdentityError: Error, CustomStringConvertible {
        case mismatch(stored: String, requested: String, path: String)

        var description: String {
            switch self {
            case .mismatch(let stored, let requested, let path):
                "this data directory belongs to server '\(stored)' (\(path)), not '\(requested)'"
            }
        }
    }
}

extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

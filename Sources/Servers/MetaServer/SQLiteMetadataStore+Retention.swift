import GRDB
import SpeedyCore

/// What retention reads and changes: tags with their push and pull times (docs/gc.md, "Retention").
extension SQLiteMetadataStore {
    public func tagDetails(in repository: String, after: String?, limit: Int) async throws(MetadataError) -> TagDetailPage {
        let limit = MetadataChecks.pageLimit(limit)
        return try await run {
            try await pool.read { db in
                let rows = try Row.fetchAll(
                    db, sql: "SELECT tag, digest, updated_ms, pulled_ms FROM tags WHERE repository = ? AND tag > ? ORDER BY tag LIMIT ?",
                    arguments: [repository, after ?? "", limit + 1])
                let tags = rows.prefix(limit).compactMap { row -> TagDetail? in
                    guard let digest = Digest(parsing: row["digest"] as String) else { return nil }
                    return TagDetail(tag: row["tag"], digest: digest, pushedMs: row["updated_ms"], pulledMs: row["pulled_ms"])
                }
                return TagDetailPage(tags: tags, more: rows.count > limit)
            }
        }
    }

    public func recordPulls(_ pulls: [TagPull]) async throws(MetadataError) {
        guard !pulls.isEmpty else { return }
        try await run {
            try await pool.write { db in
                let statement = try db.cachedStatement(
                    sql: "UPDATE tags SET pulled_ms = max(pulled_ms, min(?, ?)) WHERE repository = ? AND tag = ?")
                // A pull is never later than now here: a clock running ahead cannot pin a tag.
                let now = currentTimeMillis()
                for pull in pulls { try statement.execute(arguments: [pull.pulledMs, now, pull.repository, pull.tag]) }
            }
        }
    }

    public func deleteTag(_ detail: TagDetail, in repository: String) async throws(MetadataError) -> Bool {
        try await run {
            try await pool.write { db in
                try db.execute(
                    sql: "DELETE FROM tags WHERE repository = ? AND tag = ? AND digest = ? AND updated_ms = ?",
                    arguments: [repository, detail.tag, detail.digest.description, detail.pushedMs])
                guard db.changesCount > 0 else { return false }
                // Untagged now: the sweep's grace counts from here, not from the manifest's push.
                try db.execute(
                    sql: "UPDATE manifests SET ref_ms = ? WHERE repository = ? AND digest = ?",
                    arguments: [currentTimeMillis(), repository, detail.digest.description])
                return true
            }
        }
    }
}

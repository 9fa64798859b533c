import PostgresNIO
import SpeedyCore
import SpeedyPostgres

/// What retention reads and changes: tags with their push and pull times (docs/gc.md, "Retention").
extension PostgresMetadataStore {
    public func tagDetails(in repository: String, after: String?, limit: Int) async throws(MetadataError) -> TagDetailPage {
        let limit = MetadataChecks.pageLimit(limit)
        return try await run {
            let rows = try await database.statement { c in
                try await PostgresBackend.rows(
                    c,
                    """
                    SELECT tag, digest, updated_ms, pulled_ms FROM tags WHERE repository = \(repository) AND tag > \(after ?? "")
                    ORDER BY tag LIMIT \(limit + 1)
                    """, as: (String, String, Int64, Int64).self, logger: logger)
            }
            let tags = rows.prefix(limit).compactMap { row -> TagDetail? in
                guard let digest = Digest(parsing: row.1) else { return nil }
                return TagDetail(tag: row.0, digest: digest, pushedMs: row.2, pulledMs: row.3)
            }
            return TagDetailPage(tags: tags, more: rows.count > limit)
        }
    }

    public func recordPulls(_ pulls: [TagPull]) async throws(MetadataError) {
        guard !pulls.isEmpty else { return }
        try await run {
            try await database.statement { c in
                // One row per tag (the latest pull), and never later than now: a clock running ahead cannot pin a tag.
                _ = try await c.query(
                    """
                    UPDATE tags t SET pulled_ms = GREATEST(t.pulled_ms, LEAST(p.pulled_ms, \(Self.now)))
                    FROM (SELECT repository, tag, max(pulled_ms) AS pulled_ms
                        FROM unnest(\(pulls.map(\.repository))::text[], \(pulls.map(\.tag))::text[], \(pulls.map(\.pulledMs))::bigint[])
                        AS u(repository, tag, pulled_ms) GROUP BY repository, tag) p
                    WHERE t.repository = p.repository AND t.tag = p.tag
                    """, logger: logger)
            }
        }
    }

    public func deleteTag(_ detail: TagDetail, in repository: String) async throws(MetadataError) -> Bool {
        let now = Self.now
        return try await run {
            try await database.transaction { c in
                let deleted = try await PostgresBackend.count(
                    c,
                    """
                    DELETE FROM tags WHERE repository = \(repository) AND tag = \(detail.tag) AND digest = \(detail.digest.description)
                        AND updated_ms = \(detail.pushedMs) RETURNING 1
                    """, logger: logger) > 0
                guard deleted else { return false }
                // Untagged now: the sweep's grace counts from here, not from the manifest's push.
                _ = try await c.query(
                    "UPDATE manifests SET ref_ms = \(now) WHERE repository = \(repository) AND digest = \(detail.digest.description)", logger: logger)
                return true
            }
        }
    }
}

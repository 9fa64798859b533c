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
                _ = try await c.query(
                    """
                    UPDATE tags t SET pulled_ms = GREATEST(t.pulled_ms, p.pulled_ms)
                    FROM (SELECT * FROM unnest(\(pulls.map(\.repository))::text[], \(pulls.map(\.tag))::text[], \(pulls.map(\.pulledMs))::bigint[])
                        AS p(repository, tag, pulled_ms)) p
                    WHERE t.repository = p.repository AND t.tag = p.tag
                    """, logger: logger)
            }
        }
    }

    public func deleteTag(_ detail: TagDetail, in repository: String) async throws(MetadataError) -> Bool {
        try await run {
            try await database.statement { c in
                try await PostgresBackend.count(
                    c,
                    """
                    DELETE FROM tags WHERE repository = \(repository) AND tag = \(detail.tag) AND digest = \(detail.digest.description)
                        AND updated_ms = \(detail.pushedMs) RETURNING 1
                    """, logger: logger) > 0
            }
        }
    }
}

import GarbageCollection
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore

/// `POST /v1/retention[?dryRun=true]`: applies the metaserver's retention rules now (or says what
/// they would remove), for `chunktool retention`.
struct RetentionRoutes<Store: MetadataStore>: Sendable {
    let store: Store
    let rules: RetentionRules?
    let logger: Logger

    func register(on router: Router<SpeedyRequestContext>) {
        let (store, rules, logger) = (self.store, self.rules, self.logger)
        router.post("/v1/retention") { request, _ in
            guard let rules else {
                throw MetadataError.invalid("this metaserver has no retention rules: start it with --retention FILE (docs/gc.md, \"Retention\")")
            }
            let dryRun = request.uri.queryParameters["dryRun"] == "true"
            let report = try await RetentionSweep(meta: store, logger: logger).run(rules.current, dryRun: dryRun)
            return try JSONResponse.make(report)
        }
    }
}

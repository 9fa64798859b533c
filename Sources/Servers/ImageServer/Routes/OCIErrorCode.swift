import HTTPTypes

/// Every error code the registry API answers with, declared once with the HTTP status it is
/// usually sent with, what the OCI distribution spec says it means, and when Speedy sends it.
/// Answers are built from these values (``OCIError``), never from a code written again.
///
/// A code sent with another status in some situation (BLOB_UNKNOWN as 503 when the blob is known
/// but unreadable, say) names that situation: an ``OCIErrorCode/StatusOverride``, declared below
/// with its status, so each deviation is visible where it is sent and listed in the docs.
/// docs/registry.md's table is written from both; `OCIErrorCodeDocsTests` fails when it differs.
enum OCIErrorCode: String, CaseIterable, Sendable {
    case blobUnknown = "BLOB_UNKNOWN"
    case blobUploadInvalid = "BLOB_UPLOAD_INVALID"
    case blobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
    case digestInvalid = "DIGEST_INVALID"
    case manifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
    case manifestInvalid = "MANIFEST_INVALID"
    case manifestUnknown = "MANIFEST_UNKNOWN"
    case nameInvalid = "NAME_INVALID"
    case nameUnknown = "NAME_UNKNOWN"
    case sizeInvalid = "SIZE_INVALID"
    case unauthorized = "UNAUTHORIZED"
    case denied = "DENIED"
    case unsupported = "UNSUPPORTED"
    case tooManyRequests = "TOOMANYREQUESTS"
    /// Speedy's own, not in the spec's table: clients treat it as any 503 (retry after
    /// `Retry-After`); kept because clients and logs in the field already know it.
    case unavailable = "UNAVAILABLE"

    /// The status the code is sent with unless a ``StatusOverride`` says otherwise.
    var status: HTTPResponse.Status {
        switch self {
        case .blobUploadInvalid, .digestInvalid, .manifestBlobUnknown, .manifestInvalid, .nameInvalid, .sizeInvalid, .unsupported: .badRequest
        case .unauthorized: .unauthorized
        case .denied: .forbidden
        case .blobUnknown, .blobUploadUnknown, .manifestUnknown, .nameUnknown: .notFound
        case .tooManyRequests: .tooManyRequests
        case .unavailable: .serviceUnavailable
        }
    }

    /// What the code means: the spec's description (Speedy's own for UNAVAILABLE).
    var meaning: String {
        switch self {
        case .blobUnknown: "blob unknown to registry"
        case .blobUploadInvalid: "blob upload invalid"
        case .blobUploadUnknown: "blob upload unknown to registry"
        case .digestInvalid: "provided digest did not match uploaded content"
        case .manifestBlobUnknown: "manifest references a manifest or blob unknown to registry"
        case .manifestInvalid: "manifest invalid"
        case .manifestUnknown: "manifest unknown to registry"
        case .nameInvalid: "invalid repository name"
        case .nameUnknown: "repository name not known to registry"
        case .sizeInvalid: "provided length did not match content length"
        case .unauthorized: "authentication required"
        case .denied: "requested access to the resource is denied"
        case .unsupported: "the operation is unsupported"
        case .tooManyRequests: "too many requests"
        case .unavailable: "the registry cannot complete the request now (Speedy's own code)"
        }
    }

    /// When Speedy sends the code with its usual ``status``, for the docs.
    var when: String {
        switch self {
        case .blobUnknown: "no such blob in this repository"
        case .blobUploadInvalid: "a malformed `Content-Range`, or one covering more bytes than a blob can hold"
        case .blobUploadUnknown: "no such upload session"
        case .digestInvalid: "a malformed digest, or content whose digest is not the one given (the blob does not appear)"
        case .manifestBlobUnknown: "the manifest references a blob or manifest the repository does not have"
        case .manifestInvalid:
            "a pushed manifest that is not JSON, has a wrong `schemaVersion` or an unknown media type, or is pushed to a bad tag"
        case .manifestUnknown:
            "no such tag or manifest; also a GET or HEAD by a reference that is neither a valid tag nor a digest, as the reference registry answers"
        case .nameInvalid: "the repository name does not match the spec's grammar (upper case, `..`, over 255 characters)"
        case .nameUnknown: "the repository has nothing in it; also a path that is no API endpoint"
        case .sizeInvalid: "the body is not as long as `Content-Range` or `Content-Length` said"
        case .unauthorized: "no or bad credentials where the access rules need some; `WWW-Authenticate: Bearer realm=…,service=…,scope=…`"
        case .denied: "good credentials without the right (a pull-only user pushing); a push to a repository a pull-through cache serves"
        case .unsupported:
            "a bad `n`; a request the metaserver refuses as invalid; a token asked for another service or for over 64 scopes"
        case .tooManyRequests: "over the per-address rate, the failed-login limits or the open-upload caps; `Retry-After`"
        case .unavailable:
            "a chunk could not be recorded in the metaserver within the hold deadline of its write, or a blob was collected while a push of the same content was being linked to it; a pull-through cache's upstream cannot be reached or rate-limits, and the cache has no copy; `Retry-After`"
        }
    }
}

extension OCIErrorCode {
    /// A situation in which a code is sent with another status than its usual one. Clients and
    /// the conformance suites depend on these statuses, so each is declared here once, with why,
    /// and a call site names it: `OCIError(.unsupported, "…", status: .noWritableGroup)`.
    enum StatusOverride: CaseIterable, Sendable {
        /// BLOB_UNKNOWN as 503: the blob is known but none of its group's members gives its chunk back now.
        case blobUnreadable
        /// BLOB_UPLOAD_INVALID as 416: the spec's answer to a chunk sent out of order.
        case uploadOutOfOrder
        /// BLOB_UPLOAD_INVALID as 500: the session's saved hash state does not load; the
        /// registry's fault, not the client's.
        case uploadStateDamaged
        /// MANIFEST_INVALID as 413: the manifest is over `maxManifestBytes`.
        case manifestTooLarge
        /// UNSUPPORTED as 405 (with `Allow`): the endpoint has no such method.
        case methodNotAllowed
        /// UNSUPPORTED as 507: no group of chunkservers takes writes.
        case noWritableGroup
        /// UNSUPPORTED as 503: the metaserver or the chunkmaster does not answer in time.
        case dependencyDown
        /// TOOMANYREQUESTS as 503: no memory for the request's buffers within the wait limit.
        case memoryBusy
        /// TOOMANYREQUESTS as 503: too many logins are being checked at once.
        case loginsBusy
        /// UNAVAILABLE as 502: a pull-through cache's upstream answered something unusable.
        case upstreamFailed

        /// The code sent.
        var code: OCIErrorCode {
            switch self {
            case .blobUnreadable: .blobUnknown
            case .uploadOutOfOrder, .uploadStateDamaged: .blobUploadInvalid
            case .manifestTooLarge: .manifestInvalid
            case .methodNotAllowed, .noWritableGroup, .dependencyDown: .unsupported
            case .memoryBusy, .loginsBusy: .tooManyRequests
            case .upstreamFailed: .unavailable
            }
        }

        /// The status sent instead of the code's usual one.
        var status: HTTPResponse.Status {
            switch self {
            case .blobUnreadable, .dependencyDown, .memoryBusy, .loginsBusy: .serviceUnavailable
            case .uploadOutOfOrder: .rangeNotSatisfiable
            case .uploadStateDamaged: .internalServerError
            case .manifestTooLarge: .contentTooLarge
            case .methodNotAllowed: .methodNotAllowed
            case .noWritableGroup: .init(code: 507, reasonPhrase: "Insufficient Storage")
            case .upstreamFailed: .badGateway
            }
        }

        /// When it is sent, for the docs.
        var when: String {
            switch self {
            case .blobUnreadable: "the blob is known but no member of its group answers with its first chunk; `Retry-After`"
            case .uploadOutOfOrder: "a chunk out of order (with `Range` saying where the upload is)"
            case .uploadStateDamaged: "the upload session's saved hash state cannot be loaded"
            case .manifestTooLarge: "a manifest over the size limit (4 MiB)"
            case .methodNotAllowed: "a method the endpoint does not have (with `Allow`)"
            case .noWritableGroup: "no group of chunkservers can take writes"
            case .dependencyDown:
                "no metaserver answered for `metaOutageWait` (10 s: a request waits out a metaserver restart), or the master cannot lease file ids; `Retry-After`"
            case .memoryBusy: "no memory for the request's buffers within `--memory-wait`; `Retry-After`"
            case .loginsBusy: "too many logins are being checked at once; `Retry-After`"
            case .upstreamFailed:
                "a pull-through cache's upstream refused its login, or sent a manifest or blob whose digest is not the one asked for (nothing of it is stored)"
            }
        }
    }

    /// Every status the code is sent with and when: the usual one first, then its overrides.
    var uses: [(status: HTTPResponse.Status, when: String)] {
        [(status, when)] + StatusOverride.allCases.filter { $0.code == self }.map { ($0.status, $0.when) }
    }
}

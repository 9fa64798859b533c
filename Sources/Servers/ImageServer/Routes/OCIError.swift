import HTTPTypes
import Foundation
import Hummingbird
import Logging
import ServerSupport
import SpeedyCore

/// An error answer of the OCI Distribution API: `{"errors": [{"code", "message", "detail"}]}`
/// with one of the codes of ``OCIErrorCode``.
struct OCIError: HTTPResponseError, Sendable {
    let status: HTTPResponse.Status
    let code: OCIErrorCode
    let message: String
    let detail: String?
    /// Extra headers (a 416 carries the upload's Range and Location).
    var headers: HTTPFields = [:]

    /// An answer with `code`'s usual status.
    init(_ code: OCIErrorCode, _ message: String, detail: String? = nil) {
        self.status = code.status
        self.code = code
        self.message = message
        self.detail = detail
    }

    /// An answer in one of the declared situations that send `code` with another status.
    init(_ code: OCIErrorCode, _ message: String, detail: String? = nil, status override: OCIErrorCode.StatusOverride) {
        assert(override.code == code, "\(override) is declared for \(override.code), not \(code)")
        self.status = override.status
        self.code = code
        self.message = message
        self.detail = detail
    }

    private struct Body: Encodable {
        struct Entry: Encodable {
            var code: String
            var message: String
            var detail: String?
        }
        var errors: [Entry]
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let body = try WireJSON.encoder().encode(Body(errors: [.init(code: code.rawValue, message: message, detail: detail)]))
        var fields = headers
        fields[.contentType] = "application/json"
        // A HEAD answer has no body: only the status tells.
        let payload = request.method == .head ? ByteBuffer() : ByteBuffer(bytes: body)
        return Response(status: status, headers: fields, body: .init(byteBuffer: payload))
    }

    static func nameInvalid(_ name: String) -> OCIError {
        OCIError(.nameInvalid, "invalid repository name '\(name.prefix(300))'")
    }
    static func nameUnknown(_ name: String) -> OCIError { OCIError(.nameUnknown, "repository \(name) is not known") }
    static func digestInvalid(_ message: String) -> OCIError { OCIError(.digestInvalid, message) }
    static func blobUnknown(_ digest: String) -> OCIError { OCIError(.blobUnknown, "blob \(digest) is not known", detail: digest) }
    static func manifestUnknown(_ reference: String) -> OCIError {
        OCIError(.manifestUnknown, "manifest \(reference) is not known", detail: reference)
    }
    static func manifestInvalid(_ message: String) -> OCIError { OCIError(.manifestInvalid, message) }
    /// A pushed manifest names a blob the repository does not have.
    static func manifestBlobUnknown(blob: String, in name: String) -> OCIError {
        OCIError(.manifestBlobUnknown, "the manifest references blob \(blob), which is not in \(name)", detail: blob)
    }
    /// A pushed index names a manifest the repository does not have.
    static func manifestBlobUnknown(manifest: String, in name: String) -> OCIError {
        OCIError(.manifestBlobUnknown, "the index references manifest \(manifest), which is not in \(name)", detail: manifest)
    }
    static func uploadUnknown(_ id: String) -> OCIError {
        OCIError(.blobUploadUnknown, "upload \(id) is not known", detail: id)
    }
    static func sizeInvalid(_ message: String) -> OCIError { OCIError(.sizeInvalid, message) }
    /// A method the endpoint does not have.
    static func methodNotAllowed(_ message: String) -> OCIError { OCIError(.unsupported, message, status: .methodNotAllowed) }

    /// No memory for the request's buffers within the wait limit: come back shortly.
    static func busy(_ error: BudgetExhausted) -> OCIError {
        OCIError(
            .tooManyRequests, "the registry is at its memory limit; no buffer came free within \(error.waited); retry shortly", status: .memoryBusy)
            .retrying(after: 2)
    }

    /// A login that could not be checked now: `503` while the checks are busy, `429` over the
    /// failed-login limits; both with Retry-After.
    static func loginDeferred(_ reason: LoginDeferred) -> OCIError {
        switch reason {
        case .busy:
            OCIError(.tooManyRequests, "too many logins are being checked right now; retry in 1 s", status: .loginsBusy).retrying(after: 1)
        case .limited(let seconds):
            OCIError(.tooManyRequests, "too many failed logins; retry in \(seconds) s").retrying(after: seconds)
        }
    }

    /// A storage-side failure: 507 when no group can take writes, 503 when a dependency is down.
    /// The answer names no internal address (the registry's clients are anyone); the imageserver
    /// logs the whole reason.
    static func storage(_ error: ChunkIOError) -> OCIError {
        switch error {
        case .noWritableGroup:
            OCIError(.unsupported, "cannot store the blob now: no group of chunkservers takes writes", status: .noWritableGroup)
        case .unreadable(let ref, _):
            OCIError(.blobUnknown, "the blob's data cannot be read right now (chunk \(ref.key)); retry shortly", status: .blobUnreadable)
                .retrying(after: 2)
        case .noFileIds:
            OCIError(.unsupported, "cannot store the blob now: no chunkmaster leases file ids; retry shortly", status: .dependencyDown)
                .retrying(after: 2)
        }
    }

    /// This answer with `Retry-After: seconds`: the condition is expected to pass by itself.
    func retrying(after seconds: Int) -> OCIError {
        var answer = self
        answer.headers[.retryAfter] = String(seconds)
        return answer
    }

    /// A metadata failure seen by a handler that did not expect it.
    static func metadata(_ error: MetadataError) -> OCIError {
        switch error {
        case .blobUnknown(let digest): .blobUnknown(digest.description)
        case .manifestUnknown(let reference): .manifestUnknown(reference)
        case .nameUnknown(let name): .nameUnknown(name)
        case .uploadUnknown(let id): .uploadUnknown(id)
        case .uploadOffsetMismatch(_, let actual):
            OCIError(.blobUploadInvalid, "the upload is at offset \(actual)", status: .uploadOutOfOrder)
        case .invalid(let message): OCIError(.unsupported, message)
        case .unavailable:
            OCIError(.unsupported, "metadata unavailable: no metaserver answers; retry shortly", status: .dependencyDown).retrying(after: 2)
        case .tooManyUploads(let message): tooManyUploads(message)
        }
    }

    /// An upload cap is reached: sessions finish or expire within minutes, so come back later.
    private static func tooManyUploads(_ message: String) -> OCIError {
        OCIError(.tooManyRequests, message).retrying(after: 60)
    }
}

/// Lets handlers write `try await meta.x()` and have metadata failures answered in OCI form.
struct OCIErrorMiddleware: RouterMiddleware {
    typealias Context = RegistryRequestContext
    /// Where the internal reasons of 5xx answers go, since the answers leave them out.
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as MetadataError {
            if case .unavailable = error { logger.warning("\(request.method) \(request.uri.path.prefix(200)): \(error)") }
            response = try OCIError.metadata(error).response(from: request, context: context)
        } catch let error as ChunkIOError {
            logger.warning("\(request.method) \(request.uri.path.prefix(200)): \(error)")
            response = try OCIError.storage(error).response(from: request, context: context)
        } catch let error as OCIError {
            response = try error.response(from: request, context: context)
        } catch let error as BudgetExhausted {
            response = try OCIError.busy(error).response(from: request, context: context)
        }
        response.headers[Self.apiVersion] = "registry/2.0"
        return response
    }

    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
}

import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
@testable import RegistryClient
import SpeedyCore
import SpeedyTestSupport
import Synchronization
import Testing

/// ``RegistryClient`` against a scripted registry: the bearer-token login a registry like Docker
/// Hub asks for, the digests it checks, and ``AuthChallenge``, the parser of the challenges.
@Suite("Registry client")
struct RegistryClientTests {
    @Test func challengesParseAsRegistriesSendThem() {
        let bearer = AuthChallenge(parsing: #"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#)
        #expect(bearer?.scheme == "bearer")
        #expect(bearer?.realm == "https://auth.docker.io/token")
        #expect(bearer?.parameters["service"] == "registry.docker.io")
        #expect(bearer?.parameters["scope"] == "repository:library/alpine:pull")
        #expect(AuthChallenge(parsing: #"Basic realm="Registry Realm""#) == AuthChallenge(scheme: "basic", parameters: ["realm": "Registry Realm"]))
        #expect(AuthChallenge(parsing: #"Bearer  Realm = "a\"b" , service=plain"#)?.parameters == ["realm": #"a"b"#, "service": "plain"])
        // A second challenge after the first's parameters ends the first.
        #expect(AuthChallenge(parsing: #"Basic realm="x", Bearer realm="y""#)?.parameters == ["realm": "x"])
        #expect(AuthChallenge(parsing: "Negotiate")?.scheme == "negotiate")
        for bad in ["", "   ", #"Bearer realm="never closed"#, "Bearer realm=", "=x", String(repeating: "a", count: AuthChallenge.maximumLength + 1)] {
            #expect(AuthChallenge(parsing: bad) == nil, "\(bad.prefix(40))")
        }
        // Whatever the bytes, the parser ends without trapping.
        var generator = SeededGenerator(seed: 26)
        let alphabet = Array(#"Bearer realm=",\ "abc:/="#)
        for _ in 0..<5000 {
            let text = String((0..<Int.random(in: 0...40, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            _ = AuthChallenge(parsing: text)
        }
    }

    /// What the scripted registry saw.
    final class Seen: Sendable {
        let tokenRequests = Mutex<[String]>([])
        let registryAuthorizations = Mutex<[String]>([])
    }

    /// A registry that wants a bearer token from its `/token` (given for `user:pass` only), and
    /// serves one manifest, under a lying tag too.
    static func withScriptedRegistry(_ test: @Sendable (String, Seen) async throws -> Void) async throws {
        let seen = Seen()
        let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
        let digest = Digest.of(manifest)
        let port = Mutex(0)
        let router = Router()
        router.get("/token") { request, _ -> Response in
            seen.tokenRequests.withLock { $0.append(request.uri.query ?? "") }
            guard request.headers[.authorization] == "Basic " + Data("user:pass".utf8).base64EncodedString() else { return Response(status: .unauthorized) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: #"{"token":"t0ken","expires_in":300}"#)))
        }
        let registry: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let authorization = request.headers[.authorization] ?? ""
            seen.registryAuthorizations.withLock { $0.append(authorization) }
            guard authorization == "Bearer t0ken" else {
                let realm = "http://127.0.0.1:\(port.withLock { $0 })/token"
                return Response(
                    status: .unauthorized,
                    headers: [.wwwAuthenticate: #"Bearer realm="\#(realm)",service="scripted",scope="repository:team/app:pull""#])
            }
            var headers: HTTPFields = [.contentType: "application/vnd.oci.image.manifest.v1+json"]
            switch request.uri.path {
            case "/v2/team/app/manifests/v1", "/v2/team/app/manifests/\(digest)":
                headers[HTTPField.Name("Docker-Content-Digest")!] = digest.description
            case "/v2/team/app/manifests/lying":
                headers[HTTPField.Name("Docker-Content-Digest")!] = Digest.of(Array("other".utf8)).description
            default:
                return Response(status: .notFound, body: .init(byteBuffer: ByteBuffer(string: request.uri.path)))
            }
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: manifest)))
        }
        router.get("/v2/**", use: registry)
        router.head("/v2/**", use: registry)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: Logger(label: "test"))
        try await app.test(.live) { client in
            port.withLock { $0 = client.port! }
            try await test("http://127.0.0.1:\(client.port!)", seen)
        }
    }

    @Test func aBearerLoginIsFetchedOnceAndTheDigestsAreChecked() async throws {
        try await Self.withScriptedRegistry { url, seen in
            let client = try RegistryClient(baseURL: url, options: .init(credentials: RegistryCredentials(user: "user", password: "pass")))
            defer { Task { await client.shutdown() } }
            let fetched = try await client.manifest("team/app", reference: "v1")
            #expect(fetched.digest == Digest.of(fetched.content))
            #expect(fetched.mediaType == "application/vnd.oci.image.manifest.v1+json")
            #expect(try await client.manifest("team/app", reference: fetched.digest.description).content == fetched.content)
            #expect(try await client.manifestDigest("team/app", reference: "v1") == fetched.digest)
            // One token for the scope, then it is reused.
            #expect(seen.tokenRequests.withLock { $0 } == ["service=scripted&scope=repository:team/app:pull"])
            #expect(seen.registryAuthorizations.withLock { $0 } == ["", "Bearer t0ken", "Bearer t0ken", "Bearer t0ken"])

            await #expect(throws: RegistryClientError.self) { try await client.manifest("team/app", reference: "lying") }
            let wrongDigest = Digest.of(Array("not it".utf8)).description
            do {
                _ = try await client.manifest("team/app", reference: wrongDigest)
                Issue.record("a manifest asked for by digest came back with another")
            } catch {
                // The registry answers 404 for it: no such manifest.
                #expect(error as? RegistryClientError == .notFound("manifest team/app:\(wrongDigest)"))
            }
        }
    }

    @Test func withoutCredentialsTheLoginIsDeniedNotRetriedForever() async throws {
        try await Self.withScriptedRegistry { url, seen in
            let client = try RegistryClient(baseURL: url)
            defer { Task { await client.shutdown() } }
            do {
                _ = try await client.manifest("team/app", reference: "v1")
                Issue.record("fetched without a login")
            } catch {
                guard case .denied? = error as? RegistryClientError else {
                    Issue.record("\(error)")
                    return
                }
            }
            #expect(seen.tokenRequests.withLock { $0.count } == 1)
            #expect(seen.registryAuthorizations.withLock { $0.count } == 1)
        }
    }

    @Test func pageLinksAndOriginsAreReadStrictly() throws {
        #expect(RegistryClient.nextPage([#"</v2/_catalog?last=b&n=2>; rel="next""#]) == "/v2/_catalog?last=b&n=2")
        #expect(RegistryClient.nextPage([#"</v2/x?last=a>; rel="prev", </v2/x?last=c>; rel="next""#]) == "/v2/x?last=c")
        #expect(RegistryClient.nextPage([#"</v2/x?last=a>; rel="prev""#, #"<https://other.example/v2/x?last=z>; rel=next"#]) == "https://other.example/v2/x?last=z")
        #expect(RegistryClient.nextPage([]) == nil)
        #expect(RegistryClient.nextPage([#"<>; rel="next""#, "garbage", #"</v2/x>; rel="last""#]) == nil)
        let client = try RegistryClient(baseURL: "https://registry.example:5000/")
        defer { Task { await client.shutdown() } }
        #expect(client.isOwnOrigin("https://registry.example:5000/v2/x/blobs/uploads/1?state=a"))
        #expect(client.isOwnOrigin("https://REGISTRY.example:5000/v2/"))
        // Another scheme, host or port gets no login.
        for other in ["http://registry.example:5000/v2/", "https://registry.example/v2/", "https://cdn.example:5000/blob", "not a url"] {
            #expect(!client.isOwnOrigin(other), "\(other)")
        }
        #expect(client.url("/v2/x") == "https://registry.example:5000/v2/x")
        #expect(RegistryClient.withoutQuery("https://cdn.example/blob?X-Amz-Signature=secret") == "https://cdn.example/blob")
        #expect(throws: RegistryClientError.self) { try RegistryClient(baseURL: "ftp://registry.example") }
    }

    @Test func credentialFilesNameTheFileNotTheSecret() throws {
        let dir = try TemporaryDirectory("registry-credentials")
        defer { dir.remove() }
        let good = dir.path + "/good", bad = dir.path + "/bad"
        try "alice:pa:ss\nignored\n".write(toFile: good, atomically: true, encoding: .utf8)
        try "no-colon-secret\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(try RegistryCredentials(file: good) == RegistryCredentials(user: "alice", password: "pa:ss"))
        do {
            _ = try RegistryCredentials(file: bad)
            Issue.record("a line without a colon was taken")
        } catch {
            #expect(error as? RegistryCredentialsError == .malformed(bad))
            #expect(!"\(error)".contains("no-colon-secret"))
        }
        #expect(throws: RegistryCredentialsError.unreadable(dir.path + "/none")) { try RegistryCredentials(file: dir.path + "/none") }
    }
}

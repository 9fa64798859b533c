#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A `HOST:PORT` pair a server listens on or a client connects to.
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    /// Host name or IP address.
    public var host: String
    /// TCP port; 0 asks the system for a free one when listening.
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`, `:PORT` (loopback) or `[V6]:PORT`; nil if it is none of these.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (0...65535).contains(port)
        else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host.isEmpty ? "127.0.0.1" : host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `SCHEME://HOST:PORT`, `scheme` being `http` or `https`.
    public func url(scheme: String) -> String { "\(scheme)://\(description)" }
}

/// Where client commands find the chunkmaster: `--master`, else `SPEEDY_MASTER`, else the default.
public enum MasterLocation {
    /// The environment variable every client command reads.
    public static let environmentVariable = "SPEEDY_MASTER"
    /// Where a local cluster's master listens.
    public static let defaultURL = "http://127.0.0.1:8099"

    /// Resolves the master's base URL from an explicit flag and the environment.
    ///
    /// Accepts `http://host:port`, `https://…` or a bare `host:port` (which gets `scheme`), or
    /// several of them separated by commas (masters sharing one database); strips trailing slashes.
    public static func resolve(flag: String?, scheme: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let raw = flag ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultURL
        return normalize(raw, scheme: scheme)
    }

    /// Whether the master named by the flag (else the environment, else the default) is
    /// reached over TLS: `https://` says yes, `http://` no, and a bare `host:port` is `assumeTLS`
    /// (a process given a CA or a certificate expects a TLS cluster, and must not send the
    /// secret in the clear).
    public static func speaksTLS(flag: String?, assumeTLS: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        let raw = flag ?? environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 } ?? defaultURL
        if raw.hasPrefix("https://") { return true }
        if raw.contains("://") { return false }
        return assumeTLS
    }

    /// Turns `host:port` into `SCHEME://host:port` (`scheme` is `https` when the cluster's
    /// internal APIs speak TLS) and drops trailing slashes; a list `A,B` is normalized URL by URL.
    public static func normalize(_ raw: String, scheme: String) -> String {
        guard !raw.contains(",") else { return split(raw, scheme: scheme).joined(separator: ",") }
        var url = raw.contains("://") ? raw : "\(scheme)://\(raw)"
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }

    /// The URLs named by `URL,URL,…` (blanks ignored), each normalized.
    public static func split(_ list: String, scheme: String) -> [String] {
        list.split(separator: ",").map { String($0.filter { $0 != " " }) }.filter { !$0.isEmpty }.map { normalize($0, scheme: scheme) }
    }
}

/// The JSON encoder and decoder every Speedy process uses, so field spelling never drifts.
public enum WireJSON {
    /// Encodes with sorted keys (stable output for scripts and diffs).
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// The shared decoder.
    public static func decoder() -> JSONDecoder { JSONDecoder() }
}

/// Milliseconds since the Unix epoch, the time unit of every Speedy wire type.
public func currentTimeMillis() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded())
}

extension Duration {
    /// Whole milliseconds, for wire fields and timeouts.
    public var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}

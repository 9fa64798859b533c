import NIOSSL
import Synchronization

/// A port's TLS certificate and key, re-read from their files by ``reload()`` (on SIGHUP): each new
/// connection is served with the context made from the files as they last read well, so a
/// certificate is renewed without a restart and without refusing a connection. Connections
/// already open keep the context they began with.
public final class ServerCertificate: Sendable {
    /// The files and the TLS settings the context is made with.
    let files: ServerTransport.TLSFiles
    private let transport: ServerTransport
    private let context: Mutex<NIOSSLContext>

    /// Reads the files; throws when they are not a PEM certificate chain and its key.
    init(files: ServerTransport.TLSFiles, transport: ServerTransport) throws {
        self.files = files
        self.transport = transport
        context = Mutex(try NIOSSLContext(configuration: try transport.tlsConfiguration(files)))
    }

    /// The context a new connection is served with.
    var current: NIOSSLContext { context.withLock { $0 } }

    /// Re-reads the files; throws, keeping the context held, when they cannot be used (a key
    /// that does not match the certificate among them: NIOSSL checks the pair).
    public func reload() throws {
        let fresh = try NIOSSLContext(configuration: try transport.tlsConfiguration(files))
        context.withLock { $0 = fresh }
    }
}

import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL

/// Every role's HTTP/1 connection: Hummingbird's own pipeline (its codec, idle timeout and
/// request handling), with TLS when the port has a certificate, and Speedy's connection checks
/// around it:
///
/// ```
/// ClientConnectionCapHandler        one too many for its client: closed before anything else
/// NIOSSLServerHandler               with TLS
/// RequestHeadDeadline.ByteWatcher   the clock starts at a request's first byte
/// HTTP decoder and encoder
/// RequestHeadDeadline.HeadWatcher   and stops at its head
/// FileRegionResponseHandler         plain HTTP with file regions: sendfile for chunk reads
/// HTTP1ToHTTPServerCodec, HTTPConnectionStateHandler (idle timeout), NIOAsyncChannel
/// ```
struct SpeedyHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: Duration
    let tls: ServerCertificate?
    let regions: FileRegionResponses?
    let connections: ClientConnections

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(ClientConnectionCapHandler(table: connections))
            if let tls { try pipeline.addHandler(NIOSSLServerHandler(context: tls.current)) }
            let deadline = RequestHeadDeadline(timeout: connections.limits.headerTimeout, logger: logger)
            try pipeline.addHandler(deadline.byteWatcher)
            // Hummingbird's defaults for the decoder's limits.
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = 80 * 1024
            limits.maxHeaderListSize = 80 * 1024
            limits.maxHeaderFieldCount = 1000
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try pipeline.addHandler(deadline.headWatcher)
            if let regions { try pipeline.addHandler(FileRegionResponseHandler(regions: regions, logger: logger)) }
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

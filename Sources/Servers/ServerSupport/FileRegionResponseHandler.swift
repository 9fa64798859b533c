import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Writes a ``FileRegionResponses`` range as the body of the response head carrying its token,
/// and passes every other part through. The range's descriptor is closed once it is written, or
/// once the write fails (the client left, or the disk failed a read), and the range's owner is
/// told which.
final class FileRegionResponseHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    let regions: FileRegionResponses
    let logger: Logger

    init(regions: FileRegionResponses, logger: Logger) {
        self.regions = regions
        self.logger = logger
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .head(var head) = unwrapOutboundIn(data), let token = head.headers.first(name: FileRegionResponses.tokenHeader) else {
            context.write(data, promise: promise)
            return
        }
        head.headers.remove(name: FileRegionResponses.tokenHeader)
        guard let range = regions.take(token) else {
            // Only a route of this process sets the header, so this is a bug: a head whose body
            // cannot follow is never sent.
            logger.error("a response named file range \(token), which is not registered: connection closed")
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
            return
        }
        let descriptor = range.open()
        guard descriptor >= 0 else {
            let code = errno
            logger.error("cannot open the file of a response (errno \(code)): connection closed")
            range.finished(.failure(FileRegionResponses.OpenError(code: code)))
            promise?.fail(ChannelError.ioOnClosedChannel)
            context.close(promise: nil)
            return
        }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor)
        context.write(wrapOutboundOut(.head(head)), promise: promise)
        let sent = context.eventLoop.makePromise(of: Void.self)
        sent.futureResult.whenComplete { result in
            try? handle.close()
            range.finished(result)
        }
        let region = FileRegion(fileHandle: handle, readerIndex: range.offset, endIndex: range.offset + range.length)
        context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: sent)
    }
}

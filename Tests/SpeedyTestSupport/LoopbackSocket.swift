import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Raw TCP on loopback, for requests no well-behaved client would send and for clients that
/// start a request and go silent.
public enum LoopbackSocket {
    /// Sends `request` as raw bytes to `port` on loopback, half-closes, and returns what came back
    /// (for requests no well-behaved client would send).
    public static func sendRaw(port: Int, _ request: String) -> String {
        guard let fd = connected(port: port) else { return "" }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        Glibc.shutdown(fd, Int32(SHUT_WR))
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            reply += buffer[0..<n]
        }
        return String(decoding: reply, as: UTF8.self)
    }

    /// Opens a connection to `port` on loopback, sends `bytes` and leaves it open: a client that
    /// started a request and went silent. Returns the socket (close it when done).
    public static func openStalled(port: Int, _ bytes: String) -> Int32? {
        guard let fd = connected(port: port) else { return nil }
        let data = Array(bytes.utf8)
        _ = data.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        return fd
    }

    /// Whether the peer has closed `fd` (a read sees end of file or a reset), without waiting.
    public static func peerClosed(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 { continue }  // an error answer before the close
            return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)
        }
    }

    /// A socket connected to 127.0.0.1:`port`, or nil.
    private static func connected(port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = TestPorts.loopback(port: port)
        let result = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            close(fd)
            return nil
        }
        return fd
    }
}

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Ports for the servers tests start.
public enum TestPorts {
    /// Ports this process handed out already: the kernel may offer a port again once the probe
    /// closes it, and two servers given one port collide (a CI run saw two chunkservers on one).
    private static let given = Mutex(Set<Int>())

    /// A TCP port on 127.0.0.1 that was free a moment ago, never the same twice in one process.
    public static func free() -> Int {
        while true {
            let port = probe()
            if given.withLock({ $0.insert(port).inserted }) { return port }
        }
    }

    /// A port the kernel offers for 127.0.0.1 now.
    private static func probe() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = loopback(port: 0)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// The first of `count` consecutive TCP ports that were free a moment ago, below the
    /// kernel's ephemeral range: the ports other tests' servers get (``free()``) and the ones
    /// client connections use all come from that range, so a run of ports there could be taken
    /// by the time it is bound (`speedy up` binds its chunkservers' ports one after another).
    public static func freeRun(count: Int) -> Int {
        while true {
            let base = Int.random(in: 20_000..<(30_000 - count))
            if (base..<(base + count)).allSatisfy(isFree) { return base }
        }
    }

    static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = loopback(port: port)
        let len = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        } == 0
    }

    /// 127.0.0.1:`port` as a socket address.
    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return addr
    }
}

import Foundation
import SpeedyCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs the real `speedy` and `chunktool` executables on loopback for end-to-end tests.
///
/// Binaries come from `SPEEDY_BIN_DIR`, else the directory of the running test bundle
/// (`swift test` builds them next to it).
final class ClusterHarness: @unchecked Sendable {
    let root: String
    private var processes: [Process] = []
    private let lock = NSLock()

    init() {
        root = NSTemporaryDirectory() + "speedy-cluster-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    /// Stops every process this harness started (by its own PID) and removes the data.
    func shutdown() {
        for process in lock.withLock({ processes }) where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    static let binDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["SPEEDY_BIN_DIR"] { return dir }
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0 + "/speedy") } ?? candidates[1]
    }()

    /// A TCP port that was free a moment ago.
    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) }
        }
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Starts `speedy ARGS`, its output going to ROOT/NAME.log.
    @discardableResult
    func start(_ name: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binDirectory + "/speedy")
        process.arguments = arguments
        let logPath = root + "/\(name).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        lock.withLock { processes.append(process) }
        return process
    }

    /// Starts a chunkmaster on a free port; returns its URL.
    func startMaster(downAfter: Double = 1.5) throws -> (url: String, process: Process) {
        let port = Self.freePort()
        let process = try start("master", ["chunkmaster", "--listen", "127.0.0.1:\(port)", "--data", root + "/master", "--down-after", String(downAfter)])
        return ("http://127.0.0.1:\(port)", process)
    }

    /// Starts a chunkserver of `group` on a free port; returns its address and process.
    func startChunkserver(master: String, group: UInt32, name: String, port: Int? = nil) throws -> (addr: String, process: Process) {
        let port = port ?? Self.freePort()
        let process = try start(
            name,
            [
                "chunkserver", "--master", master, "--group", String(group), "--listen", "127.0.0.1:\(port)",
                "--data", root + "/\(name)", "--id", name, "--volume-size", "64M", "--reserve", "0",
                "--heartbeat-interval", "0.25",
            ])
        return ("127.0.0.1:\(port)", process)
    }

    /// Runs `chunktool ARGS` to completion: exit status and standard output.
    func chunktool(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binDirectory + "/chunktool")
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Polls `condition` every 100 ms until it holds or `seconds` pass.
    func eventually(within seconds: Double, _ condition: () async -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await condition() { return true }
            try? await Task.sleep(for: .milliseconds(100))
        }
        return await condition()
    }

    /// Sends `request` as raw bytes to `port` on loopback, half-closes, and returns what came back
    /// (for requests no well-behaved client would send).
    static func sendRaw(port: Int, _ request: String) -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        let connected = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return "" }
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

    /// The log a process wrote, for failure messages.
    func log(_ name: String) -> String {
        (try? String(contentsOfFile: root + "/\(name).log", encoding: .utf8)) ?? "(no log)"
    }
}

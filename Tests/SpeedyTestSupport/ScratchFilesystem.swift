import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A small filesystem a test mounts for itself, to fill it up or make its disk fail on purpose:
/// a tmpfs of a given size, or ext4 on a loop device over a file whose reads and writes can be
/// made to fail (EIO) and come back. Root only: ``unavailableReason`` says why not elsewhere.
///
/// Only what it made is touched: its own mount point, loop device and image file, all undone by
/// ``remove()``.
public final class ScratchFilesystem: @unchecked Sendable {
    /// Where the filesystem is mounted.
    public let path: String
    /// The loop device under an ext4 one; nil for a tmpfs.
    public let device: String?
    /// The file the loop device reads and writes.
    private let image: String?
    private var removed = false

    /// Why a test cannot mount a tmpfs here (not root, or the kernel refuses), nil when it can.
    public static let unavailableReason: String? = {
        guard geteuid() == 0 else { return "mounting a small filesystem needs root" }
        do {
            try probe(ScratchFilesystem.tmpfs(bytes: 1 << 20))
            return nil
        } catch {
            return "cannot mount a tmpfs: \(error)"
        }
    }()

    /// Why a test cannot put ext4 on a loop device and make it fail here, nil when it can.
    public static let loopUnavailableReason: String? = {
        if let reason = unavailableReason { return reason }
        for tool in ["/usr/sbin/losetup", "/usr/sbin/mkfs.ext4"] where !FileManager.default.isExecutableFile(atPath: tool) {
            return "\(tool) is missing"
        }
        do {
            try probe(ScratchFilesystem.ext4(bytes: 16 << 20))
            return nil
        } catch {
            return "cannot mount ext4 on a loop device: \(error)"
        }
    }()

    private static func probe(_ made: @autoclosure () throws -> ScratchFilesystem) throws {
        try made().remove()
    }

    private init(path: String, device: String?, image: String?) {
        self.path = path
        self.device = device
        self.image = image
    }

    deinit { remove() }

    /// ``tmpfs(bytes:at:)`` and ``ext4(bytes:at:)`` from async code: made on a thread of their
    /// own, since mkfs and mount can take seconds while the kernel writes back a build's pages,
    /// and a test thread waiting for them holds one of the two every suite shares.
    public static func tmpfs(bytes: Int, at path: String? = nil) async throws -> ScratchFilesystem {
        try await detached { try tmpfs(bytes: bytes, at: path) }
    }

    /// See ``tmpfs(bytes:at:)``: ext4 on a loop device, made on a thread of its own.
    public static func ext4(bytes: Int, at path: String? = nil) async throws -> ScratchFilesystem {
        try await detached { try ext4(bytes: bytes, at: path) }
    }

    private static func detached(_ make: @escaping @Sendable () throws -> ScratchFilesystem) async throws -> ScratchFilesystem {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try make() }) }
        }
    }

    /// Mounts a tmpfs of `bytes` at `path` (made if missing), or at a fresh directory.
    public static func tmpfs(bytes: Int, at path: String? = nil) throws -> ScratchFilesystem {
        let mountPoint = try makeMountPoint(path)
        try command("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes)", "tmpfs", mountPoint])
        return ScratchFilesystem(path: mountPoint, device: nil, image: nil)
    }

    /// Makes an image file of `bytes`, a loop device over it and ext4 on that, mounted at `path`
    /// (made if missing) or at a fresh directory.
    public static func ext4(bytes: Int, at path: String? = nil) throws -> ScratchFilesystem {
        let mountPoint = try makeMountPoint(path)
        let image = NSTemporaryDirectory() + "speedy-disk-" + UUID().uuidString + ".img"
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, off_t(bytes)) == 0 else {
            throw SpawnedProgram.Failure("cannot make \(image): \(String(cString: strerror(errno)))")
        }
        do {
            let device = try command("/usr/sbin/losetup", ["--find", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
            let made = ScratchFilesystem(path: mountPoint, device: device, image: image)
            try command("/usr/sbin/mkfs.ext4", ["-q", "-F", device])
            try command("/usr/bin/mount", [device, mountPoint])
            return made
        } catch {
            unlink(image)
            throw error
        }
    }

    private static func makeMountPoint(_ path: String?) throws -> String {
        let mountPoint = path ?? NSTemporaryDirectory() + "speedy-mount-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        return mountPoint
    }

    /// Bytes the filesystem has free for an unprivileged writer right now (statvfs).
    public var availableBytes: Int {
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { return 0 }
        return Int(fs.f_bavail) * Int(fs.f_frsize)
    }

    /// Makes every read and write of the device past its first `keeping` bytes fail with EIO, as a
    /// dying disk does, and drops the cached pages of `evicting` so their next reads go to it. The
    /// image is left alone (the loop device's size limit changes), so ``restoreDevice()`` brings
    /// every byte back.
    public func failDevice(keeping: Int = 1 << 20, evicting: [String] = []) throws {
        try setSizeLimit(keeping)
        for file in evicting { Self.evict(file) }
    }

    /// Gives the device its whole size back: it reads and writes again.
    public func restoreDevice() throws {
        try setSizeLimit(0)
    }

    /// Unmounts and mounts the device again, as an operator does once a disk is back: ext4 turns
    /// itself read-only after a write error, and mounting replays its journal.
    public func remount() throws {
        guard let device else { throw SpawnedProgram.Failure("only a loop device is remounted") }
        try Self.command("/usr/bin/umount", [path])
        try Self.command("/usr/bin/mount", [device, path])
    }

    /// Sets the loop device's size limit (0: the whole image) with LOOP_GET_STATUS64 and
    /// LOOP_SET_STATUS64, which the kernel takes while the device is mounted.
    private func setSizeLimit(_ bytes: Int) throws {
        guard let device else { throw SpawnedProgram.Failure("only a loop device can fail") }
        let fd = open(device, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SpawnedProgram.Failure("open \(device): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        // struct loop_info64: five u64s (device, inode, rdevice, offset, sizelimit), then the rest.
        var info = [UInt8](repeating: 0, count: 232)
        let got = info.withUnsafeMutableBytes { ioctl(fd, 0x4C05, $0.baseAddress!) }
        guard got == 0 else { throw SpawnedProgram.Failure("LOOP_GET_STATUS64 \(device): \(String(cString: strerror(errno)))") }
        info.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(bytes).littleEndian, toByteOffset: 32, as: UInt64.self) }
        let set = info.withUnsafeMutableBytes { ioctl(fd, 0x4C04, $0.baseAddress!) }
        guard set == 0 else { throw SpawnedProgram.Failure("LOOP_SET_STATUS64 \(device): \(String(cString: strerror(errno)))") }
    }

    /// Drops a file's clean pages from the page cache (posix_fadvise), so it is read from the disk again.
    public static func evict(_ file: String) {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_DONTNEED))
        close(fd)
    }

    /// Unmounts (lazily, if something still holds it), detaches the loop device, deletes the image
    /// and the mount point. Safe to call twice.
    public func remove() {
        guard !removed else { return }
        removed = true
        if (try? Self.command("/usr/bin/umount", [path])) == nil {
            _ = try? Self.command("/usr/bin/umount", ["--lazy", path])
        }
        if let device { _ = try? Self.command("/usr/sbin/losetup", ["--detach", device]) }
        if let image { unlink(image) }
        rmdir(path)
    }

    /// Runs a system tool; its output, or an error with it when it fails.
    @discardableResult
    static func command(_ tool: String, _ arguments: [String]) throws -> String {
        let (status, output) = try SpawnedProgram.runBlocking(tool, arguments, environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"])
        guard status == 0 else { throw SpawnedProgram.Failure("\(tool) \(arguments.joined(separator: " ")) exited \(status): \(output)") }
        return output
    }
}

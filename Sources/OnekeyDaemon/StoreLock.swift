import Glibc
import OnekeyLinux

/// One daemon per `state_dir` (CONTRACT §10): an flock'd `onekeyd.lock` holding the owner's PID.
/// The kernel drops the lock when the process exits, however it dies (SIGKILL included), so a
/// stale file never blocks a restart. Keep the object for the life of the process.
public final class StoreLock: Sendable {
    public let path: String
    private let fd: Int32

    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// Another process holds the lock; `pid` as it wrote it (nil if unreadable).
        case held(path: String, pid: Int32?)
        case system(SystemError)

        public var description: String {
            switch self {
            case .held(let path, let pid?): return "another onekeyd (PID \(pid)) holds \(path)"
            case .held(let path, nil): return "another process holds \(path)"
            case .system(let e): return "\(e)"
            }
        }
    }

    public static let fileName = "onekeyd.lock"

    private init(path: String, fd: Int32) { self.path = path; self.fd = fd }

    /// Takes the lock or fails at once (never waits).
    public static func acquire(directory: String) throws(Failure) -> StoreLock {
        let path = directory + "/" + fileName
        let fd: Int32
        do { fd = try syscall("open \(path)") { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644) } } catch { throw .system(error) }
        do {
            try syscall("flock \(path)") { flock(fd, LOCK_EX | LOCK_NB) }
        } catch {
            let pid = readPID(fd)
            close(fd)
            if error.wouldBlock { throw .held(path: path, pid: pid) }
            throw .system(error)
        }
        let text = Array("\(getpid())\n".utf8)
        do {
            try syscall("ftruncate \(path)") { ftruncate(fd, 0) }
            _ = try syscall("pwrite \(path)") { text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) } }
        } catch {
            close(fd)
            throw .system(error)
        }
        return StoreLock(path: path, fd: fd)
    }

    deinit { close(fd) }

    private static func readPID(_ fd: Int32) -> Int32? {
        var buffer = [UInt8](repeating: 0, count: 32)
        guard let n = try? syscall("pread lock file", { buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) } }), n > 0 else { return nil }
        return Int32(String(decoding: buffer[0..<n].prefix { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self))
    }
}

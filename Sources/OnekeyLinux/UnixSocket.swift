import CSystemd
import Glibc

/// Unix stream sockets for the control socket (CONTRACT §8).
public enum UnixSocket {
    static func address(_ path: String) throws(SystemError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SystemError("socket path \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in bytes.enumerated() { p[i] = b }
        }
        return addr
    }

    /// Binds and listens on `path` (replacing a stale socket file), with `mode` permissions.
    public static func listen(path: String, mode: mode_t = 0o660) throws(SystemError) -> Int32 {
        var addr = try address(path)
        let fd = try syscall("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
        do {
            unlink(path)
            try syscall("bind \(path)") {
                withUnsafePointer(to: &addr) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
            try syscall("chmod \(path)") { chmod(path, mode) }
            try syscall("listen \(path)") { Glibc.listen(fd, 128) }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// Connects (blocking) to `path`.
    public static func connect(path: String) throws(SystemError) -> Int32 {
        var addr = try address(path)
        let fd = try syscall("socket(AF_UNIX)") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        do {
            try syscall("connect \(path)") {
                withUnsafePointer(to: &addr) { p in
                    p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
                }
            }
        } catch {
            close(fd)
            throw error
        }
        return fd
    }

    /// One request line out, one response line back (without its newline): the control
    /// socket's exchange, for onekeyctl and the tests.
    public static func exchangeLine(path: String, _ line: [UInt8], timeoutMs: Int32 = 15_000) throws(SystemError) -> [UInt8] {
        let fd = try connect(path: path)
        defer { close(fd) }
        try writeAll(fd, line + [10], what: "control socket")
        var response = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 65536)
        while !response.contains(10) {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard try syscall("poll control socket", { poll(&pfd, 1, timeoutMs) }) > 0 else {
                throw SystemError("waiting for an answer on \(path)", errno: ETIMEDOUT)
            }
            let n = try syscall("read control socket") { read(fd, &buf, buf.count) }
            if n == 0 { break }
            response += buf[0..<n]
        }
        return Array(response.prefix { $0 != 10 })
    }

    /// Accepts one connection (non-blocking, close-on-exec), or nil when none is waiting.
    public static func accept(_ listener: Int32) throws(SystemError) -> Int32? {
        do throws(SystemError) {
            return try syscall("accept on control socket") {
                accept4(listener, nil, nil, Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue))
            }
        } catch {
            if error.wouldBlock || error.errno == ECONNABORTED { return nil }
            throw error
        }
    }

    /// The peer's credentials (SO_PEERCRED).
    public static func peerCredentials(_ fd: Int32) throws(SystemError) -> PeerCredentials {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides it behind _GNU_SOURCE).
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        var len = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        try syscall("getsockopt(SO_PEERCRED)") { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) }
        return PeerCredentials(pid: cred.0, uid: cred.1, gid: cred.2)
    }
}

/// Who is on the other end of a Unix socket (SO_PEERCRED), and whether they may change state.
public struct PeerCredentials: Sendable {
    public var pid: pid_t
    public var uid: uid_t
    public var gid: gid_t

    public init(pid: pid_t, uid: uid_t, gid: gid_t) { self.pid = pid; self.uid = uid; self.gid = gid }

    /// Root, the daemon's own user, or a member of its group — primary or supplementary (the
    /// peer process's `Groups:` in /proc, else the user's groups from getgrouplist).
    public func isTrusted(group: gid_t = getgid(), user: uid_t = getuid()) -> Bool {
        if uid == 0 || uid == user || gid == group { return true }
        return supplementaryGroups().contains(group)
    }

    public func supplementaryGroups() -> [gid_t] {
        if pid > 0, let status = try? readSmallFile("/proc/\(pid)/status") {
            let text = String(decoding: status, as: UTF8.self)
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") }) {
                return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { gid_t($0) }
            }
        }
        guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return [] }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, gid, &groups, &count) >= 0 else { return [] }
        }
        return Array(groups.prefix(Int(count)))
    }
}

/// Reads a small file (/proc entries) whole.
public func readSmallFile(_ path: String, limit: Int = 1 << 20) throws(SystemError) -> [UInt8] {
    let fd = try syscall("open \(path)") { open(path, O_RDONLY | O_CLOEXEC) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while out.count < limit {
        let n = try syscall("read \(path)") { read(fd, &buf, buf.count) }
        if n == 0 { break }
        out += buf[0..<n]
    }
    return out
}

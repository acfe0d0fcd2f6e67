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
            try syscall("listen \(path)") { Glibc.listen(fd, 16) }
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

    public static func accept(_ listener: Int32) throws(SystemError) -> Int32? {
        while true {
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                do { try setNonBlocking(fd) } catch { close(fd); throw error }
                return fd
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK || e == ECONNABORTED { return nil }
            throw SystemError("accept on control socket", errno: e)
        }
    }

    /// The peer's credentials (SO_PEERCRED).
    public static func peerCredentials(_ fd: Int32) throws(SystemError) -> (pid: pid_t, uid: uid_t, gid: gid_t) {
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc hides it behind _GNU_SOURCE).
        var cred: (Int32, UInt32, UInt32) = (0, 0, 0)
        var len = socklen_t(MemoryLayout<(Int32, UInt32, UInt32)>.size)
        try syscall("getsockopt(SO_PEERCRED)") { getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) }
        return (cred.0, cred.1, cred.2)
    }
}

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

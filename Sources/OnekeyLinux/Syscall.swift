import Glibc

/// A failed system call: what was attempted and the errno it gave.
public struct SystemError: Error, Sendable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32 = Glibc.errno) {
        self.operation = operation
        self.errno = errno
    }

    public var description: String { "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }

    public var wouldBlock: Bool { errno == EAGAIN || errno == EWOULDBLOCK }
}

/// Every syscall goes through here: retried on EINTR, and a failure throws a `SystemError`
/// naming the operation.
@discardableResult
public func syscall<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ body: () -> T) throws(SystemError) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw SystemError(operation(), errno: e)
    }
}

/// Sets O_NONBLOCK and FD_CLOEXEC on a descriptor.
public func setNonBlocking(_ fd: Int32) throws(SystemError) {
    let flags = try syscall("fcntl(F_GETFL)") { fcntl(fd, F_GETFL) }
    try syscall("fcntl(F_SETFL, O_NONBLOCK)") { fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    try syscall("fcntl(F_SETFD, FD_CLOEXEC)") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
}

/// Writes all of `bytes` to a (possibly non-blocking) descriptor, waiting with poll on EAGAIN.
public func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String, timeoutMs: Int32 = 2000) throws(SystemError) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { p in Glibc.write(fd, p.baseAddress, p.count) }
        if n >= 0 { offset += n; continue }
        let e = errno
        if e == EINTR { continue }
        guard e == EAGAIN || e == EWOULDBLOCK else { throw SystemError("write \(what)", errno: e) }
        var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        let r = try syscall("poll \(what)") { poll(&pfd, 1, timeoutMs) }
        if r == 0 { throw SystemError("write \(what) (timed out)", errno: ETIMEDOUT) }
    }
}

/// Reads what is available (non-blocking). Returns nil at end of file; throws on errors other than EAGAIN.
public func readAvailable(_ fd: Int32, max: Int = 4096, what: String) throws(SystemError) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: max)
    while true {
        let n = buffer.withUnsafeMutableBytes { p in Glibc.read(fd, p.baseAddress, p.count) }
        if n > 0 { return Array(buffer[0..<n]) }
        if n == 0 { return nil }
        let e = errno
        if e == EINTR { continue }
        if e == EAGAIN || e == EWOULDBLOCK { return [] }
        throw SystemError("read \(what)", errno: e)
    }
}

/// Monotonic nanoseconds.
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

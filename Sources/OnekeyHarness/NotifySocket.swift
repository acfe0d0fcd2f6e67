import Foundation
import Glibc
import OnekeyLinux

/// A fake `NOTIFY_SOCKET`: a datagram socket the test owns, recording what the daemon tells
/// the service manager (READY=1, STATUS=…, WATCHDOG=1, RELOADING=1, STOPPING=1).
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSCondition()
    private var messages: [(nanos: UInt64, text: String)] = []
    private var closed = false

    public init() throws {
        path = try TempDirectory.make("notify") + "/notify.sock"
        fd = try syscall("socket(AF_UNIX, SOCK_DGRAM)") { socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
        let fd = self.fd
        try syscall("bind \(path)") {
            withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        }
        let thread = Thread { [self] in receive() }
        thread.start()
    }

    private func receive() {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&pfd, 1, 100)
            lock.lock(); let stop = closed; lock.unlock()
            if stop { return }
            guard r > 0 else { continue }
            let n = recv(fd, &buf, buf.count, 0)
            guard n > 0 else { continue }
            lock.lock()
            messages.append((monotonicNanos(), String(decoding: buf[0..<n], as: UTF8.self)))
            lock.broadcast()
            lock.unlock()
        }
    }

    public var all: [(nanos: UInt64, text: String)] { lock.lock(); defer { lock.unlock() }; return messages }

    /// Waits for a datagram containing the line `line` (e.g. "READY=1") after index `from`.
    public func wait(for line: String, after from: Int = 0, timeout: Double) -> Int? {
        lock.lock(); defer { lock.unlock() }
        let deadline = Date(timeIntervalSinceNow: timeout)
        var timedOut = false
        while true {
            if let i = messages.indices.dropFirst(from).first(where: { messages[$0].text.split(separator: "\n").contains { $0 == line } }) { return i }
            if timedOut { return nil }
            timedOut = !lock.wait(until: deadline)  // then look once more: the signal may have raced it
        }
    }

    deinit {
        lock.lock(); closed = true; lock.unlock()
        usleep(150_000)
        close(fd)
    }
}

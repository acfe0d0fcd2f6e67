import Foundation
import Glibc
import OnekeyLinux

/// A real mosquitto on 127.0.0.1 and a free port, for tests and the benchmark.
public final class Broker: @unchecked Sendable {
    /// Chosen free at creation; a new one only if mosquitto finds it taken before it binds.
    public private(set) var port: Int
    public let directory: String
    private let portChosenHere: Bool
    private var process: Process?
    private let extraConfig: String

    public static var executable: String {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "mosquitto"
    }

    private let persistent: Bool

    /// `persistent`: the broker keeps sessions and retained messages across its own restarts
    /// (as a production broker would), in its temp directory.
    public init(extraConfig: String = "", port: Int? = nil, persistent: Bool = false) throws {
        Orphans.reapOnce()
        self.port = try port ?? Self.freePort()
        portChosenHere = port == nil
        directory = try TempDirectory.make("broker")
        chmod(directory, 0o777)  // mosquitto started as root drops to its own user
        self.extraConfig = extraConfig
        self.persistent = persistent
        // A port free a moment ago may be taken by another test's broker before this one binds
        // it; then that other broker would answer our connects. Take another port instead.
        var attempt = 1
        while true {
            do { try start(); break } catch is PortTaken where portChosenHere && attempt < 5 {
                attempt += 1
                self.port = try Self.freePort()
            }
        }
    }

    private struct PortTaken: Error, CustomStringConvertible {
        var port: Int
        var description: String { "mosquitto: port \(port) is taken by another process" }
    }

    /// A TCP port that was free a moment ago (bound to port 0, then released).
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SystemError("socket") }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &addr) { p in
            try p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sp in
                guard bind(fd, sp, len) == 0 else { throw SystemError("bind") }
                guard getsockname(fd, sp, &len) == 0 else { throw SystemError("getsockname") }
            }
        }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    public func start() throws {
        guard !isRunning else { return }
        let conf = directory + "/mosquitto.conf"
        let text = """
            listener \(port) 127.0.0.1
            allow_anonymous true
            set_tcp_nodelay true
            persistence \(persistent)
            persistence_location \(directory)/
            autosave_interval 1
            max_inflight_messages 0
            max_queued_messages 0
            log_dest file \(directory)/mosquitto.log
            \(extraConfig)
            """
        try text.write(toFile: conf, atomically: true, encoding: .utf8)
        let logPath = directory + "/mosquitto.log"
        let logStart = (try? FileManager.default.attributesOfItem(atPath: logPath)[.size] as? Int) ?? 0
        func logSinceStart() -> String {
            guard let h = FileHandle(forReadingAtPath: logPath) else { return "" }
            defer { try? h.close() }
            try? h.seek(toOffset: UInt64(logStart))
            return String(decoding: h.readDataToEndOfFile(), as: UTF8.self)
        }
        let p = Process()
        // The test runner blocks SIGTERM in its threads and children inherit the mask; unblock it
        // so mosquitto can stop gracefully (and save its sessions) as a real broker would.
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, set()); os.execv(sys.argv[1], sys.argv[1:])",
                       Self.executable, "-c", conf]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        process = p
        // Ready when this process says it runs (so its listeners are open) and the port answers;
        // a connect alone could reach another broker that took the port first.
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            if p.isRunning, logSinceStart().contains(" running"), Self.canConnect(port: port) { return }
            guard p.isRunning else {
                process = nil
                if logSinceStart().contains("Address already in use") { throw PortTaken(port: port) }
                break
            }
            usleep(20_000)
        }
        throw HarnessError("mosquitto did not start on port \(port); see \(directory)/mosquitto.log")
    }

    static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Stops the broker (SIGTERM) and waits for it to exit.
    public func stop() {
        guard let p = process, p.isRunning else { return }
        p.terminate()
        waitForExit(p, timeout: 10)
        process = nil
    }

    deinit { stop() }
}

/// Polls for a child's exit (Foundation's waitUntilExit can hang on Linux when several children run),
/// escalating to SIGKILL after `timeout`.
public func waitForExit(_ p: Process, timeout: Double) {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while p.isRunning && Date() < deadline { usleep(5_000) }
    if p.isRunning {
        kill(p.processIdentifier, SIGKILL)
        let hard = Date(timeIntervalSinceNow: 5)
        while p.isRunning && Date() < hard { usleep(5_000) }
    }
}

public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

public enum TempDirectory {
    public static func make(_ tag: String) throws -> String {
        var template = Array("\(NSTemporaryDirectory())/onekeyd-\(tag)-XXXXXX".utf8CString)
        guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else { throw SystemError("mkdtemp") }
        return String(cString: p)
    }
}

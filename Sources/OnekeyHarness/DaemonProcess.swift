import Foundation
import Glibc
import OnekeyCore
import OnekeyLinux

/// Where the built executables are: beside the running test bundle or benchmark, unless
/// `ONEKEYD_BIN_DIR` says otherwise.
public enum Binaries {
    public static var directory: String {
        if let d = ProcessInfo.processInfo.environment["ONEKEYD_BIN_DIR"] { return d }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        return (exe as NSString).deletingLastPathComponent
    }
    public static func path(_ name: String) -> String { directory + "/" + name }
}

/// The built `onekeyd`, run for real in a temp state/runtime directory.
public final class DaemonProcess: @unchecked Sendable {
    public let directory: String
    public let configPath: String
    public let socketPath: String
    public let stateDir: String
    public let logPath: String
    private var process: Process?
    public var environment: [String: String] = [:]
    /// A command the daemon runs under, e.g. `umockdev-run -d dev.umockdev --` (the daemon's
    /// own arguments follow it).
    public var launcher: [String] = []
    /// Lines for the launcher's standard input (e.g. the umockdev helper's commands).
    private var launcherInput: Pipe?

    public init(config: (_ stateDir: String, _ socket: String) -> String) throws {
        Orphans.reapOnce()
        directory = try TempDirectory.make("daemon")
        configPath = directory + "/onekeyd.toml"
        socketPath = directory + "/run/control.sock"
        stateDir = directory + "/state"
        logPath = directory + "/onekeyd.log"
        try config(stateDir, socketPath).write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    public func writeConfig(_ text: String) throws {
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    public var isRunning: Bool { process?.isRunning ?? false }
    public var pid: Int32 { process?.processIdentifier ?? -1 }

    /// Starts the daemon and waits until its control socket answers `status`.
    public func start(waitReady: Bool = true) throws {
        let p = Process()
        let command = launcher + [Binaries.path("onekeyd"), "--config", configPath]
        p.executableURL = URL(fileURLWithPath: command[0])
        p.arguments = Array(command.dropFirst())
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "NOTIFY_SOCKET")
        env.removeValue(forKey: "JOURNAL_STREAM")
        env.removeValue(forKey: "WATCHDOG_USEC")
        for (k, v) in environment { env[k] = v }
        p.environment = env
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        p.standardError = log
        p.standardOutput = log
        if !launcher.isEmpty {
            let input = Pipe()
            p.standardInput = input
            launcherInput = input
        }
        try p.run()
        process = p
        if waitReady { try waitForControl(timeout: 20) }
    }

    public func waitForControl(timeout: Double) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while Date() < deadline {
            if let r = try? control(["cmd": "status"]), r["ok"]?.boolValue == true { return }
            guard isRunning else { throw HarnessError("onekeyd exited during start-up (\(exitStatus ?? -1)); log:\n\(log)") }
            usleep(20_000)
        }
        throw HarnessError("onekeyd did not answer on \(socketPath); log:\n\(log)")
    }

    /// One request on the control socket.
    public func control(_ request: [String: String]) throws -> JSON {
        try control(line: JSON.object(request.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) }).text)
    }

    public func control(line: String) throws -> JSON {
        try JSON.parse(UnixSocket.exchangeLine(path: socketPath, Array(line.utf8), timeoutMs: 10_000))
    }

    /// Sends one command line to the launcher.
    public func tellLauncher(_ line: String) {
        launcherInput?.fileHandleForWriting.write(Data((line + "\n").utf8))
    }

    public func signal(_ sig: Int32) { if let p = process, p.isRunning { kill(p.processIdentifier, sig) } }

    /// SIGKILL, as a crash or power cut would.
    public func crash() {
        guard let p = process else { return }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        waitForExit(p, timeout: 10)
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    public func stop(timeout: Double = 15) -> Int32? {
        guard let p = process else { return nil }
        // Under a launcher that forks (umockdev-run), the daemon is its child: signal that, and the
        // launcher follows. A launcher that execs (unshare … sh -c 'exec …') is the daemon itself.
        var signalled = false
        if !launcher.isEmpty, p.isRunning {
            signalled = (try? runCommand("/usr/bin/pkill", ["-TERM", "-P", String(p.processIdentifier)]))?.status == 0
        }
        if p.isRunning && !signalled { kill(p.processIdentifier, SIGTERM) }
        waitForExit(p, timeout: timeout)
        return p.terminationStatus
    }

    public var exitStatus: Int32? { process.flatMap { $0.isRunning ? nil : $0.terminationStatus } }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    deinit { if let p = process, p.isRunning { kill(p.processIdentifier, SIGKILL) } }
}

/// Runs a command to completion and captures its output.
public func runCommand(_ path: String, _ args: [String], environment: [String: String]? = nil, timeout: Double = 30) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    if let environment { p.environment = environment }
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    // Read before waiting so a full pipe cannot stall the child.
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    waitForExit(p, timeout: timeout)
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// A configuration for tests, the benchmark and the demo: one ev1527 port, a grid with a
/// primary on shift around the clock, and whatever `extra` adds.
public enum SampleConfig {
    /// The `test` policy (the one `policy:` below is used with): steps as (after_s, target).
    public static func ladder(_ steps: [(Int, String)]) -> String {
        "[[policy]]\nid = \"test\"\n" + steps.map { "[[policy.step]]\nafter_s = \($0.0)\nnotify = [\"\($0.1)\"]\n" }.joined()
    }

    public static func text(brokerPort: Int, portPath: String?, stateDir: String, socket: String, gateway: String = "test-gw",
                            repeatWindowMs: Int = 3000, pressMergeSeconds: Int = 300, devices: [(id: String, address: String)] = [("btn-chen-401", "A1B2C")],
                            policy: String? = nil, extra: String = "") -> String {
        var t = """
            [gateway]
            id = "\(gateway)"
            state_dir = "\(stateDir)"
            control_socket = "\(socket)"
            timezone = "Asia/Shanghai"

            [mqtt]
            host = "127.0.0.1"
            port = \(brokerPort)
            keepalive_s = 10

            [dedup]
            repeat_window_ms = \(repeatWindowMs)
            press_merge_s = \(pressMergeSeconds)

            """
        if let portPath {
            t += """
                [[port]]
                path = "\(portPath)"
                driver = "ev1527"

                """
        }
        for d in devices {
            t += """
                [[device]]
                id = "\(d.id)"
                driver = "ev1527"
                address = "\(d.address)"
                grid = "grid-07"
                resident = "陈婆婆"
                location = "双合店社区 3栋2单元401"

                """
        }
        t += """
            [[grid]]
            id = "grid-07"
            name = "第七网格"
            policy = "\(policy == nil ? "default" : "test")"

            [[member]]
            id = "m-135"
            name = "仲毓萍"

            [[member]]
            id = "m-200"
            name = "张伟"

            [[member]]
            id = "m-136"
            name = "李建国"

            [[member]]
            id = "m-station"
            name = "值班室"

            [[shift]]
            grid = "grid-07"
            member = "m-135"
            role = "primary"
            start = "00:00"
            end = "24:00"

            [[shift]]
            grid = "grid-07"
            member = "m-200"
            role = "primary"
            start = "00:00"
            end = "24:00"

            [[shift]]
            grid = "grid-07"
            member = "m-136"
            role = "backup"
            start = "00:00"
            end = "24:00"

            """
        if let policy { t += policy + "\n" }
        return t + extra
    }
}

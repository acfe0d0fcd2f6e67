import Foundation
import Glibc
import OnekeyHarness
import Testing

/// The harness kills daemons and brokers orphaned by a dead test process (they read later
/// tests' ptys), and nothing else.
@Suite struct OrphansTests {
    /// Starts `python3 <dir>/<name> --config <config>` detached (`setsid -f`: its parent exits at
    /// once, so it is reparented) and returns its PID once it runs.
    static func orphan(named name: String, config: String) throws -> Int32 {
        let dir = try TempDirectory.make("orphan-bin")
        let script = dir + "/" + name, pidFile = dir + "/pid"
        // It closes what it inherited first: Foundation's Process counts its child as running
        // while any descriptor of the spawn is open, and the detached grandchild would hold one.
        try "import os, time\nos.closerange(3, 65536)\nopen('\(pidFile)', 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        p.arguments = ["-f", "python3", script, "--config", config]
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        waitForExit(p, timeout: 10)
        let deadline = Date(timeIntervalSinceNow: 10)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text) { return pid }
            usleep(20_000)
        }
        throw HarnessError("the orphan did not start")
    }

    static func parent(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ").dropFirst().first.map(String.init)
    }

    @Test func orphanedHarnessDaemonsAreKilledAndOthersAreNot() throws {
        let harnessDaemon = try Self.orphan(named: "onekeyd", config: NSTemporaryDirectory() + "/onekeyd-daemon-zz/onekeyd.toml")
        let someoneElses = try Self.orphan(named: "onekeyd", config: "/etc/onekeyd/onekeyd.toml")
        defer { kill(harnessDaemon, SIGKILL); kill(someoneElses, SIGKILL) }
        usleep(200_000)
        // Where a subreaper adopts orphans instead of init, the harness cannot tell them from a
        // live test's children and leaves them: nothing to assert then.
        try #require(Self.parent(harnessDaemon) != nil)
        guard Self.parent(harnessDaemon) == "1" else { return }
        let killed = Orphans.reap()
        #expect(killed.contains(harnessDaemon))
        #expect(!killed.contains(someoneElses))
        usleep(200_000)
        #expect(Self.parent(someoneElses) != nil, "a daemon outside the harness's temp directories runs on")
    }
}

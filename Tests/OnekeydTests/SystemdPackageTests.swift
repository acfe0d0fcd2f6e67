import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
@testable import OnekeyControl
import Testing

/// What the package ships besides the daemon: onekeyctl as a command-line tool (CONTRACT §2)
/// — options anywhere, help, version, completions, exit codes — run as the built binary.
/// The package itself under a real systemd is scripts/test-system.sh.
@Suite struct SystemdPackageTests {
    func ctl(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCommand(Binaries.path("onekeyctl"), args)
    }

    @Test func onekeyctlAndOnekeydReportTheSameVersion() throws {
        let c = try ctl(["--version"])
        let d = try runCommand(Binaries.path("onekeyd"), ["--version"])
        #expect(c.status == 0 && d.status == 0)
        let version = d.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").last.map(String.init)
        #expect(version != nil && c.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "onekeyctl \(version ?? "?")", "\(c.stdout) vs \(d.stdout)")
    }

    @Test func optionsStandBeforeOrAfterTheCommand() throws {
        let sock = "/nonexistent-\(getpid())/control.sock"
        for args in [["--json", "--socket", sock, "status"], ["status", "--json", "--socket", sock],
                     ["--socket=\(sock)", "alerts", "--all"], ["--socket", sock, "roster", "gaps", "--days", "2", "--json"],
                     ["--json", "ack", "01ABC", "--socket", sock, "--member", "m-1"], ["unknown", "--socket", sock], ["--socket", sock, "modem"]] {
            let r = try ctl(args)
            #expect(r.status == 69, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.hasPrefix("onekeyctl: cannot reach onekeyd at \(sock)"), "\(args): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
    }

    @Test func helpForEveryCommand() throws {
        let top = try ctl(["--help"])
        #expect(top.status == 0)
        for command in ["status", "devices", "alerts", "alert", "ack", "resolve", "decline", "oncall", "roster",
                        "test-alert", "reload", "outbox", "unknown", "modem"] {
            #expect(top.stdout.contains("  \(command) "), "\(command) listed")
            let viaHelp = try ctl(["help", command])
            let viaFlag = try ctl([command, "--help"])
            #expect(viaHelp.status == 0 && viaFlag.status == 0, "\(command)")
            #expect(viaHelp.stdout == viaFlag.stdout && viaHelp.stdout.contains("USAGE: onekeyctl \(command)"), "\(command)")
        }
        let withOptions = try ctl(["--json", "--socket", "/x", "help", "ack"])
        let plain = try ctl(["help", "ack"])
        #expect(withOptions.status == 0 && withOptions.stdout == plain.stdout, "\(withOptions.stderr)")
        let gaps = try ctl(["help", "roster", "gaps"])
        #expect(gaps.status == 0 && gaps.stdout.contains("--days"))
        #expect(try ctl(["resolve", "--help"]).stdout.contains("--note"))
    }

    @Test func usageErrorsExit64WithOneNamedCause() throws {
        let cases: [([String], String)] = [
            (["frobnicate"], "unknown command frobnicate"),
            (["ack", "01ABC"], "--member"),
            (["roster", "gaps", "--days", "0"], "--days takes a positive number"),
            (["roster", "gaps", "--days", "many"], "--days"),
            (["status", "--socket"], "--socket"),
            (["alert"], "<id>"),
            (["status", "extra"], "extra"),
        ]
        for (args, fragment) in cases {
            let r = try ctl(args)
            #expect(r.status == 64, "\(args): \(r.status) \(r.stderr)")
            let first = r.stderr.split(separator: "\n").first.map(String.init) ?? ""
            #expect(first.hasPrefix("onekeyctl: ") && first.contains(fragment), "\(args): \(r.stderr)")
        }
    }

    @Test func completionScriptsKnowTheCommands() throws {
        for shell in ["bash", "zsh", "fish"] {
            let r = try ctl(["--generate-completion-script", shell])
            #expect(r.status == 0, "\(shell)")
            #expect(r.stdout.contains("test-alert") && r.stdout.contains("member") && r.stdout.contains("gaps"), "\(shell)")
        }
    }

    /// EACCES on connect is "not permitted" (77) with the fix, not "cannot reach" (69).
    @Test func aSocketTheUserMayNotReachExits77WithAHint() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onekeyctl-perm-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir + "/run", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        chmod(dir + "/run", 0o750)
        let listener = try UnixSocket.listen(path: dir + "/run/control.sock", mode: 0o660)
        defer { close(listener) }
        let copy = dir + "/onekeyctl"
        try FileManager.default.copyItem(atPath: Binaries.path("onekeyctl"), toPath: copy)
        chmod(copy, 0o755)
        let r = try runCommand("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", copy,
                                                    "--socket", dir + "/run/control.sock", "test-alert", "--device", "d"])
        #expect(r.status == 77, "\(r.status) \(r.stderr)")
        #expect(r.stderr.hasPrefix("onekeyctl: not permitted") && r.stderr.contains("onekeyd group"), "\(r.stderr)")
    }

    @Test func unknownAddressesAreShownForEnrolment() throws {
        let now = Timestamp(rfc3339: "2026-01-01T10:00:00.000Z")!
        let r = try JSON.parse(Array(#"{"ok":true,"unknown":[{"driver":"ev1527","address":"0F3A1","codes":["8","4"],"frames":42,"first_heard":"2026-01-01T09:00:00.000Z","last_heard":"2026-01-01T09:59:00.000Z"}]}"#.utf8))
        let out = Render.unknown(r, now)
        #expect(out.contains("0F3A1") && out.contains("ev1527") && out.contains("8,4") && out.contains("42"), "\(out)")
        #expect(out.contains("1h ago") && out.contains("1m ago") && out.contains("[[device]]"), "\(out)")
        #expect(Render.unknown(try JSON.parse(Array(#"{"ok":true,"unknown":[]}"#.utf8)), now) == "no unknown addresses heard")
    }

    @Test func theModemShowsWhatTheDaemonReports() throws {
        let now = Timestamp(rfc3339: "2026-01-01T10:00:00.000Z")!
        let full = try JSON.parse(Array(#"{"ok":true,"modem":{"configured":true,"path":"/dev/ttyUSB2","state":"ready","sim":"READY","registration":"home","signal":21,"sms_waiting":1,"sms_sent":7,"sms_failed":0,"calls":2,"last_error":null,"imei":"8612"}}"#.utf8))
        let out = Render.modem(full, now)
        for fragment in ["/dev/ttyUSB2", "ready", "READY", "home", "21", "SMS waiting  1", "SMS sent     7", "calls        2", "imei", "8612"] {
            #expect(out.contains(fragment), "\(fragment) in\n\(out)")
        }
        let partial = Render.modem(try JSON.parse(Array(#"{"ok":true,"modem":{"configured":true,"state":"no_sim"}}"#.utf8)), now)
        #expect(partial.contains("no_sim") && !partial.contains("signal"), "\(partial)")
        #expect(Render.modem(try JSON.parse(Array(#"{"ok":true,"modem":{"configured":false}}"#.utf8)), now) == "no modem configured")
    }
}

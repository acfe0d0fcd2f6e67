import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing

/// systemd notifications, onekeyctl against a running daemon, and reloads.
@Suite(.serialized) struct OperationsTests {
    @Test func notifiesReadyWatchdogReloadingAndStopping() throws {
        let notify = try NotifySocket()
        let rig = try Rig(start: false)
        rig.daemon.environment = ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"]
        try rig.daemon.start(waitReady: false)
        guard let ready = notify.wait(for: "READY=1", timeout: 20) else { Issue.record("no READY=1:\n\(rig.daemon.log)"); return }
        // READY comes only once startup is done: the store is open, the port open, the socket answering.
        let readyText = notify.all[ready].text
        #expect(readyText.contains("STATUS=") && readyText.contains("ports 1/1 open"), "\(readyText)")
        #expect(try rig.daemon.control(["cmd": "status"])["ok"]?.boolValue == true)
        #expect(notify.all.prefix(ready).allSatisfy { !$0.text.contains("WATCHDOG=1") })
        // Watchdog pings at half the interval (0.5 s): several in 2 s.
        usleep(2_000_000)
        #expect(notify.all.filter { $0.text.contains("WATCHDOG=1") }.count >= 3)
        // STATUS follows what happens.
        try rig.press("A1B2C")
        #expect(notify.wait(for: "STATUS=broker connected, 1 open alert(s), outbox 0, ports 1/1 open", timeout: 10) != nil)
        // Reload: RELOADING=1 then READY=1.
        let mark = notify.all.count
        #expect(try rig.ctl(["reload"]).status == 0)
        let reloading = notify.wait(for: "RELOADING=1", after: mark, timeout: 5)
        #expect(reloading != nil)
        #expect(notify.wait(for: "READY=1", after: (reloading ?? mark) + 1, timeout: 5) != nil)
        // SIGTERM: STOPPING=1 and a clean exit.
        rig.daemon.signal(SIGTERM)
        #expect(notify.wait(for: "STOPPING=1", timeout: 10) != nil)
        #expect(rig.daemon.stop() == 0)
    }

    @Test func everyOnekeyctlCommand() throws {
        let rig = try Rig(policy: SampleConfig.ladder([(0, "grid:primary"), (600, "grid:backup")]))
        try rig.press("A1B2C")
        rig.sub.wait(timeout: 10) { $0.contains { $0.topic.hasSuffix("/pages") } }
        func ok(_ args: [String]) throws -> String {
            let r = try rig.ctl(args)
            #expect(r.status == 0, "\(args): \(r.status) \(r.stderr)")
            return r.stdout
        }
        func json(_ args: [String]) throws -> JSON {
            let out = try ok(["--json"] + args)
            let j = try JSON.parse(out.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(j["ok"]?.boolValue == true)
            return j
        }
        func fails(_ args: [String], _ code: Int32, _ fragment: String) throws {
            let r = try rig.ctl(args)
            #expect(r.status == code, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(fragment), "\(args): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").first?.hasPrefix("onekeyctl: ") == true)
        }

        let status = try ok(["status"])
        #expect(status.contains("broker") && status.contains("connected") && status.contains("1 open"))
        #expect(status.contains("PORT") && status.contains("ev1527"))
        #expect(try json(["status"])["mqtt"]?["connected"]?.boolValue == true)

        let devices = try ok(["devices"])
        #expect(devices.contains("btn-chen-401") && devices.contains("just now") && devices.contains("A1B2C"))
        #expect(try json(["devices"])["devices"]?.arrayValue?.count == 2)

        let alerts = try json(["alerts"])["alerts"]?.arrayValue ?? []
        #expect(alerts.count == 1)
        let id = alerts.first?["id"]?.stringValue ?? ""
        #expect(try ok(["alerts"]).contains(id))
        let one = try ok(["alert", id])
        #expect(one.contains("state      open") && one.contains("fda1b2c81edf"))
        #expect(try json(["alert", id])["events"]?.arrayValue?.count == 1)

        #expect(try ok(["oncall"]).contains("m-135"))
        #expect(try json(["oncall", "--grid", "grid-07", "--at", "2026-01-01T03:00:00+08:00"])["grids"]?.arrayValue?.first?["backup"]?.arrayValue?.count == 1)
        #expect(try ok(["roster", "gaps", "--days", "2"]).contains("no roster gaps"))
        #expect(try json(["outbox"])["count"]?.intValue == 0)
        #expect(try ok(["outbox"]).contains("0 message(s) waiting"))

        #expect(try ok(["decline", id, "--member", "m-135"]).contains("step 1"))
        #expect(try ok(["ack", id, "--member", "m-136"]).contains("acked"))
        #expect(try ok(["resolve", id, "--member", "m-136", "--note", "到场"]).contains("resolved"))
        #expect(try json(["alerts"])["alerts"]?.arrayValue?.isEmpty == true)
        #expect(try json(["alerts", "--all"])["alerts"]?.arrayValue?.first?["note"]?.stringValue == "到场")

        let test = try json(["test-alert", "--device", "btn-wang-502"])
        #expect(test["alert"]?.stringValue != nil)
        #expect(rig.sub.wait(timeout: 5) { $0.contains { $0.json?["test"]?.boolValue == true && $0.topic.hasSuffix("/pages") } }
            .contains { $0.json?["test"]?.boolValue == true })
        #expect(try ok(["reload"]).contains("reloaded"))

        // Errors: exit codes per contract, one line on stderr, no state change.
        try fails(["alert", "NOPE"], 65, "unknown alert NOPE")
        try fails(["ack", id, "--member", "m-136"], 65, "already resolved")
        try fails(["ack", "NOPE", "--member", "ghost"], 65, "unknown member ghost")
        try fails(["test-alert", "--device", "ghost"], 65, "unknown device ghost")
        try fails(["oncall", "--grid", "grid-99"], 65, "unknown grid")
        try fails(["oncall", "--at", "tomorrow"], 64, "RFC 3339")
        try fails(["ack", id], 64, "--member")
        try fails(["frobnicate"], 64, "unknown command")
        try fails(["--socket", rig.daemon.directory + "/nope.sock", "status"], 69, "cannot reach onekeyd")

        // A malformed request line gets an error and the daemon keeps answering.
        let bad = try rig.daemon.control(line: "{this is not json")
        #expect(bad["ok"]?.boolValue == false && bad["code"]?.stringValue == "usage")
        #expect(try rig.daemon.control(line: #"{"cmd":"launch-missiles"}"#)["error"]?.stringValue?.contains("unknown command") == true)
        #expect(try rig.daemon.control(line: "[1,2]")["ok"]?.boolValue == false)
        #expect(try rig.daemon.control(["cmd": "status"])["ok"]?.boolValue == true)

        // Peer credentials: another user may read but not change anything (the socket is opened
        // up here only so that such a user can connect at all; its mode is 0660).
        chmod(rig.daemon.socketPath, 0o666)
        chmod(rig.daemon.directory, 0o755)
        chmod(rig.daemon.directory + "/run", 0o755)
        // A copy of onekeyctl the other user can surely execute, wherever the checkout lives.
        let ctl = rig.daemon.directory + "/onekeyctl"
        try FileManager.default.copyItem(atPath: Binaries.path("onekeyctl"), toPath: ctl)
        chmod(ctl, 0o755)
        let asNobody = try runCommand("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ctl, "--socket", rig.daemon.socketPath, "status"])
        #expect(asNobody.status == 0, "\(asNobody.stderr)")
        let denied = try runCommand("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", ctl, "--socket", rig.daemon.socketPath, "test-alert", "--device", "btn-chen-401"])
        #expect(denied.status == 77 && denied.stderr.contains("needs root or the onekeyd user or group"), "\(denied.stderr)")

        rig.daemon.stop()
        try fails(["status"], 69, "cannot reach onekeyd")
    }

    @Test func reloadKeepsTheOpenAlertsLadderAndRefusesABrokenFile() throws {
        let rig = try Rig(policy: SampleConfig.ladder([(0, "grid:primary"), (3, "grid:backup")]))
        try rig.press("A1B2C")
        #expect(rig.sub.next(after: 0, timeout: 5) { $0.topic.hasSuffix("/pages") } != nil)
        let original = try String(contentsOfFile: rig.daemon.configPath, encoding: .utf8)
        // A good change (a new device) under the open alert.
        try rig.daemon.writeConfig(original + "\n[[device]]\nid = \"btn-new\"\ndriver = \"ev1527\"\naddress = \"0AAAA\"\ngrid = \"grid-07\"\n")
        #expect(try rig.ctl(["reload"]).status == 0)
        #expect(try rig.daemon.control(["cmd": "devices"])["devices"]?.arrayValue?.count == 3)
        // The ladder continues: the backup is paged at 3 s.
        #expect(rig.sub.next(after: 0, timeout: 6) { $0.topic == "onekey/v1/members/m-136/pages" } != nil)
        // SIGHUP reloads too (a second new device).
        try rig.daemon.writeConfig(original + "\n[[device]]\nid = \"btn-new\"\ndriver = \"ev1527\"\naddress = \"0AAAA\"\ngrid = \"grid-07\"\n"
                                   + "\n[[device]]\nid = \"btn-newer\"\ndriver = \"ev1527\"\naddress = \"0CCCC\"\ngrid = \"grid-07\"\n")
        rig.daemon.signal(SIGHUP)
        var count = 0
        for _ in 0..<100 where count != 4 {
            count = try rig.daemon.control(["cmd": "devices"])["devices"]?.arrayValue?.count ?? 0
            usleep(30_000)
        }
        #expect(count == 4, "SIGHUP reloaded the file")
        // A broken file is refused with FILE:LINE, by onekeyctl and by SIGHUP; the daemon keeps running.
        try rig.daemon.writeConfig(original + "\n[[device]]\nid = \"btn-bad\"\ndriver = \"ev1527\"\naddress = \"0BBBB\"\ngrid = \"grid-99\"\n")
        let r = try rig.ctl(["reload"])
        #expect(r.status == 78)
        #expect(r.stderr.contains("\(rig.daemon.configPath):") && r.stderr.contains("unknown grid \"grid-99\""), "\(r.stderr)")
        rig.daemon.signal(SIGHUP)
        usleep(300_000)
        #expect(rig.daemon.isRunning)
        #expect(rig.daemon.log.components(separatedBy: "reload refused").count - 1 == 2, "both refusals logged")
        let s = try rig.daemon.control(["cmd": "status"])
        #expect(s["open_alerts"]?.intValue == 1)
        #expect(try rig.daemon.control(["cmd": "devices"])["devices"]?.arrayValue?.count == 4, "the running configuration stayed")
    }

    @Test func aControlClientThatDoesNotReadCannotDelayAPage() throws {
        let rig = try Rig()
        // A client that asks and asks but never reads its answers.
        let fd = try UnixSocket.connect(path: rig.daemon.socketPath)
        defer { close(fd) }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let request = Array("{\"cmd\":\"status\"}\n".utf8)
        var sent = 0
        for _ in 0..<3000 {
            let n = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            sent += 1
        }
        #expect(sent > 100)
        // Presses are still paged at once.
        let t0 = Date()
        try rig.press("A1B2C")
        #expect(rig.sub.next(after: 0, timeout: 5) { $0.topic.hasSuffix("/pages") } != nil)
        #expect(Date().timeIntervalSince(t0) < 1.5, "page not held up by the slow client")
        #expect(try rig.daemon.control(["cmd": "status"])["ok"]?.boolValue == true)
    }
}

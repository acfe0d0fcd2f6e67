import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// The foundation slice with real parts: mosquitto on a free loopback port, a pty as the
/// receiver, the built onekeyd, and a real MQTT subscriber.
@Suite(.serialized) struct EndToEndTests {
    @Test func pressesBecomeAlertsAndPages() throws {
        let rig = try Rig()
        // Garbage, a press repeated three times, a truncated frame, a second device's press
        // repeated twice, and a press from an address nobody enrolled.
        try rig.pty.write([0x00, 0x55, 0xFF])
        try rig.press("A1B2C", repeats: 3)
        try rig.pty.write([0xFD, 0x12])
        try rig.press("D4E5F", repeats: 2)
        try rig.press("12345")

        rig.sub.wait(timeout: 10) { msgs in
            msgs.filter { $0.topic.hasSuffix("/pages") }.count >= 4 && msgs.filter { $0.topic.hasSuffix("/events") }.count >= 3
        }
        usleep(300_000)  // anything extra would arrive now

        let states = rig.alertStates
        let ids = Set(states.compactMap { $0["id"]?.stringValue })
        #expect(ids.count == 2, "one alert per press, repeats folded")
        for a in states {
            for field in ["id", "gateway", "device", "kind", "state", "grid", "resident", "location", "raised_at", "press_count", "step", "paged", "acked_by", "acked_at", "resolved_at", "test"] {
                #expect(a[field] != nil, "alert JSON lacks \(field)")
            }
            #expect(a["state"]?.stringValue == "open" && a["kind"]?.stringValue == "panic" && a["press_count"]?.intValue == 1)
            #expect(Timestamp(rfc3339: a["raised_at"]?.stringValue ?? "") != nil)
        }
        // One page per on-call primary (m-135 and m-200 hold 24 h primary shifts), per alert.
        let pages = rig.pages.compactMap(\.json)
        #expect(pages.count == 4)
        for id in ids {
            let members = pages.filter { $0["alert"]?.stringValue == id }.compactMap { $0["member"]?.stringValue }.sorted()
            #expect(members == ["m-135", "m-200"])
        }
        #expect(pages.allSatisfy { $0["reason"]?.stringValue == "raised" && $0["resident"]?.stringValue == "陈婆婆" })
        #expect(rig.pages.allSatisfy { $0.topic == "onekey/v1/members/\($0.json?["member"]?.stringValue ?? "")/pages" })

        // Events: two panics and one unknown_device, which raised nothing.
        let events = rig.events
        #expect(events.count == 3)
        let unknown = events.filter { $0["kind"]?.stringValue == "unknown_device" }
        #expect(unknown.count == 1)
        #expect(unknown.first?["device"]?.isNull == true && unknown.first?["address"]?.stringValue == "12345")
        #expect(unknown.first?["alert"]?.isNull == true)
        #expect(unknown.first?["raw"]?.stringValue == "fd1234581edf")
        for e in events {
            for field in ["id", "gateway", "device", "driver", "address", "kind", "code", "received_at", "raw"] { #expect(e[field] != nil) }
        }

        // Counted, not lost: 2 + 1 repeats folded, garbage skipped.
        let status = try rig.daemon.control(["cmd": "status"])
        #expect(status["counters"]?["repeat_frames"]?.intValue == 3)
        #expect((status["counters"]?["garbage_bytes"]?.intValue ?? 0) >= 5)
        #expect(status["counters"]?["frames"]?.intValue == 6)
        // The status topic is retained and online.
        #expect(rig.sub.on("onekey/v1/gateways/test-gw/status").last?.json?["state"]?.stringValue == "online")
        #expect(rig.daemon.stop() == 0)
    }

    @Test func aPortThatDisappearsIsReopenedWhenItComesBack() throws {
        let rig = try Rig()
        try rig.press("A1B2C")
        #expect(rig.sub.next(after: 0, timeout: 10) { $0.topic.hasSuffix("/pages") } != nil)
        // Unplug: the receiver vanishes.
        rig.pty.close()
        try FileManager.default.removeItem(atPath: rig.portLink)
        var closed = false
        for _ in 0..<100 where !closed {
            let ports = try rig.daemon.control(["cmd": "status"])["ports"]?.arrayValue ?? []
            closed = ports.first?["state"]?.stringValue == "closed"
            if !closed { usleep(50_000) }
        }
        #expect(closed)
        // Plug it back in (a new pty behind the same path); a press gets through again.
        let replugged = try PseudoTerminal()
        try FileManager.default.createSymbolicLink(atPath: rig.portLink, withDestinationPath: replugged.path)
        var open = false
        for _ in 0..<200 where !open {
            let ports = try rig.daemon.control(["cmd": "status"])["ports"]?.arrayValue ?? []
            open = ports.first?["state"]?.stringValue == "open"
            if !open { usleep(50_000) }
        }
        #expect(open, "port reopened within 10 s")
        let before = rig.sub.count
        try replugged.write(Rig.frame("D4E5F"))
        #expect(rig.sub.next(after: before, timeout: 10) { $0.topic.hasSuffix("/pages") } != nil)
        #expect(rig.daemon.log.contains("failed"))
    }

    @Test func badConfigurationsExit78NamingFileAndLine() throws {
        let dir = try TempDirectory.make("cfg")
        let good = SampleConfig.text(brokerPort: 1883, portPath: "/dev/ttyUSB0", stateDir: dir, socket: dir + "/c.sock")
        let cases: [(String, String, String)] = [
            ("unknown key", good.replacingOccurrences(of: "keepalive_s = 10", with: "keepalive_s = 10\nkeep_alive = 5"), "unknown key 'keep_alive' in [mqtt]"),
            ("wrong type", good.replacingOccurrences(of: "repeat_window_ms = 3000", with: "repeat_window_ms = \"3s\""), "must be an integer"),
            ("dangling grid", good.replacingOccurrences(of: "grid = \"grid-07\"\nresident", with: "grid = \"grid-99\"\nresident"), "unknown grid \"grid-99\""),
            ("bad gateway id", good.replacingOccurrences(of: "id = \"test-gw\"", with: "id = \"test gw!\""), "must match [A-Za-z0-9_-]{1,64}"),
        ]
        for (what, text, message) in cases {
            let path = dir + "/bad.toml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let lines = text.components(separatedBy: "\n")
            for args in [["--check-config", "--config", path], ["--config", path]] {
                let r = try runCommand(Binaries.path("onekeyd"), args)
                #expect(r.status == 78, "\(what): exit \(r.status)")
                let line = r.stderr.trimmingCharacters(in: .newlines)
                #expect(line.hasPrefix(path + ":"), "\(what): \(line)")
                #expect(line.contains(message), "\(what): \(line)")
                #expect(!line.contains("\n"), "one line")
                // The line number points at the offending line.
                let n = Int(line.dropFirst(path.count + 1).prefix { $0.isNumber }) ?? 0
                #expect(n >= 1 && n <= lines.count)
                let offending = n >= 1 && n <= lines.count ? lines[n - 1] : ""
                #expect(["keep_alive", "repeat_window_ms", "grid-99", "test gw!"].contains { offending.contains($0) }, "\(what): line \(n) is \(offending)")
            }
        }
        let missing = try runCommand(Binaries.path("onekeyd"), ["--check-config", "--config", dir + "/nope.toml"])
        #expect(missing.status == 78 && missing.stderr.hasPrefix(dir + "/nope.toml:0: cannot read"))
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/onekeyd.toml").standardized.path
        let ok = try runCommand(Binaries.path("onekeyd"), ["--check-config", "--config", example])
        #expect(ok.status == 0, "\(ok.stderr)")
        let usage = try runCommand(Binaries.path("onekeyd"), ["--frobnicate"])
        #expect(usage.status == 64)
    }
}

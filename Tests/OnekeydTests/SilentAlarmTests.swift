import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import OnekeyLinux
import Testing

/// No alarm is ever silent (CONTRACT §6, §10): roster gaps page the fallback, an exhausted ladder
/// keeps reminding, an emergency nobody can be paged for says so, a full disk loses no page,
/// and a restart in the middle of a press does not make it two.
@Suite(.serialized) struct SilentAlarmTests {
    /// A site whose grid has a backup around the clock but no primary at all: every `grid:primary`
    /// step is a roster gap.
    static func gapConfig(brokerPort: Int, port: String, state: String, socket: String, fallback: String,
                          shifts: String = SilentAlarmTests.backupOnly, remind: Int = 3) -> String {
        """
        [gateway]
        id = "gap-gw"
        state_dir = "\(state)"
        control_socket = "\(socket)"
        timezone = "Asia/Shanghai"

        [mqtt]
        host = "127.0.0.1"
        port = \(brokerPort)
        keepalive_s = 10

        [[port]]
        path = "\(port)"
        driver = "ev1527"

        [[device]]
        id = "btn-chen-401"
        driver = "ev1527"
        address = "A1B2C"
        grid = "grid-09"
        resident = "陈婆婆"
        location = "双合店社区 3栋2单元401"

        [[grid]]
        id = "grid-09"
        name = "第九网格"
        policy = "gappy"

        [[member]]
        id = "m-136"
        name = "李建国"

        [[member]]
        id = "m-station"
        name = "值班室"

        \(shifts)

        [[policy]]
        id = "gappy"
        repeat = 1
        repeat_after_s = 2
        fallback = [\(fallback)]
        remind_s = \(remind)
        [[policy.step]]
        after_s = 0
        notify = ["grid:primary"]
        [[policy.step]]
        after_s = 2
        notify = ["grid:backup"]

        """
    }

    static let backupOnly = """
        [[shift]]
        grid = "grid-09"
        member = "m-136"
        role = "backup"
        start = "00:00"
        end = "24:00"
        """

    struct Site {
        let broker: Broker
        let pty: PseudoTerminal
        let daemon: DaemonProcess
        let sub: Subscriber
        func press(_ address: String = "A1B2C") throws { try pty.write(Rig.frame(address)) }
        var pages: [JSON] { sub.all.filter { $0.topic.hasSuffix("/pages") }.compactMap(\.json) }
        func stop() { daemon.stop(); sub.close(); broker.stop() }
    }

    static func site(fallback: String, shifts: String = backupOnly, remind: Int = 3) throws -> Site {
        let broker = try Broker()
        let pty = try PseudoTerminal()
        let port = broker.port, path = pty.path
        let daemon = try DaemonProcess { state, socket in
            gapConfig(brokerPort: port, port: path, state: state, socket: socket, fallback: fallback, shifts: shifts, remind: remind)
        }
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"])
        try daemon.start()
        return Site(broker: broker, pty: pty, daemon: daemon, sub: sub)
    }

    /// Seconds after `t0` at which each page (in arrival order) reached the subscriber.
    func timeline(_ s: Site, since t0: UInt64) -> [(member: String, reason: String, at: Double)] {
        s.sub.all.filter { $0.topic.hasSuffix("/pages") }.compactMap { m in
            guard let j = m.json, let member = j["member"]?.stringValue, let reason = j["reason"]?.stringValue else { return nil }
            return (member, reason, Double(Int64(m.receivedNanos) - Int64(t0)) / 1e9)
        }
    }

    @Test func aRosterGapPagesTheFallbackAtOnceAndTheRoundsKeepTheirTiming() throws {
        let s = try Self.site(fallback: "\"member:m-station\"")
        defer { s.stop() }
        let t0 = monotonicNanos()
        try s.press()
        // Round 1: step 0 finds no primary → the fallback now; step 1 (backup) at 2 s.
        // Round 2 starts 2 s after round 1's last step: fallback at 4 s, backup at 6 s.
        // Then reminders every 3 s to everyone paged so far.
        _ = s.sub.wait(timeout: 20) { msgs in msgs.filter { $0.topic.hasSuffix("/pages") && $0.json?["reason"]?.stringValue == "reminder" }.count >= 2 }
        let tl = timeline(s, since: t0)
        let fallback = tl.filter { $0.reason == "fallback" }
        let escalated = tl.filter { $0.reason == "escalated" || $0.reason == "raised" }.filter { $0.member == "m-136" }
        let reminders = tl.filter { $0.reason == "reminder" }
        #expect(fallback.first?.member == "m-station")
        #expect((fallback.first?.at ?? 99) < 1.0, "fallback paged within 1 s of the press: \(tl)")
        #expect(fallback.count == 2, "one fallback page per gap step (two rounds): \(tl)")
        if fallback.count == 2 { #expect(fallback[1].at >= 3.8 && fallback[1].at <= 5.5, "round 2's gap at 4 s, not at once: \(tl)") }
        #expect(escalated.count == 2, "the backup step fires in each round: \(tl)")
        if escalated.count == 2 {
            #expect(escalated[0].at >= 1.8 && escalated[0].at <= 3.5, "\(tl)")
            #expect(escalated[1].at >= 5.8 && escalated[1].at <= 7.5, "\(tl)")
        }
        // Reminders go to everyone paged so far (m-station and m-136), after the last round.
        #expect(Set(reminders.map(\.member)) == ["m-station", "m-136"], "\(tl)")
        if let first = reminders.first { #expect(first.at >= 8.8, "first reminder remind_s after the last step: \(tl)") }
        let alert = s.sub.all.last { $0.topic.contains("/alerts/") && !$0.payload.isEmpty }?.json
        #expect(alert?["unattended"]?.boolValue == false)
        #expect(s.daemon.log.contains("roster gap"))
    }

    @Test func anEmergencyNobodyCanBePagedIsUnattendedAndCriticalAtEveryStep() throws {
        // No shift at all and a fallback that resolves to nobody either.
        let s = try Self.site(fallback: "\"grid:primary\"", shifts: "", remind: 2)
        defer { s.stop() }
        try s.press()
        let states = s.sub.wait(timeout: 10) { msgs in msgs.contains { $0.topic.contains("/alerts/") && $0.json?["unattended"]?.boolValue == true } }
        let alert = states.last { $0.topic.contains("/alerts/") && !$0.payload.isEmpty }?.json
        #expect(alert?["unattended"]?.boolValue == true, "published as unattended")
        #expect(alert?["state"]?.stringValue == "open")
        #expect(s.pages.isEmpty)
        usleep(2_500_000)
        let critical = s.daemon.log.split(separator: "\n").filter { $0.lowercased().contains("crit") && $0.contains("nobody") }
        #expect(critical.count >= 2, "logged as critical at every step:\n\(s.daemon.log)")
        // Still scheduled: the daemon keeps trying (a shift added by reload would be paged).
        let status = try s.daemon.control(["cmd": "status"])
        #expect(status["next_escalation"]?.stringValue != nil)
    }

    @Test func aSigkillWhileTheModuleIsStillRepeatingTheFrameIsStillOnePress() throws {
        let rig = try Rig()
        try rig.press("A1B2C")
        guard rig.sub.next(after: 0, timeout: 5, where: { $0.topic.hasSuffix("/pages") }) != nil else {
            Issue.record("no page"); return
        }
        rig.daemon.crash()
        // The module keeps repeating the frame; the bytes wait in the tty until the daemon is back.
        for _ in 0..<5 { try rig.pty.write(Rig.frame("A1B2C")); usleep(30_000) }
        try rig.daemon.start()
        #expect(try rig.waitDelivered(timeout: 10))
        usleep(500_000)
        let counts = rig.alertStates.compactMap { $0["press_count"]?.intValue }
        #expect(counts.max() == 1, "repeats after a restart are the same press: \(counts)")
        #expect(!rig.pages.contains { $0.json?["reason"]?.stringValue == "pressed_again" })
        let ids = Set(rig.alertStates.compactMap { $0["id"]?.stringValue })
        #expect(ids.count == 1)
    }

    /// The state directory on a small tmpfs that fills up, the broker down, then up, then space
    /// freed: every press is paged exactly once and every alert survives a restart afterwards.
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func aFullDiskLosesNoPageAndWritesEverythingOnceItHasRoomAgain() throws {
        let devices = Rig.addresses(4)
        let rig = try Rig(devices: devices, persistentBroker: true, start: false)
        try FileManager.default.createDirectory(atPath: rig.daemon.stateDir, withIntermediateDirectories: true)
        let mounted = try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "onekeyd-full", rig.daemon.stateDir])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        defer { _ = try? runCommand("/bin/umount", ["-l", rig.daemon.stateDir]) }
        try rig.daemon.start()
        try rig.press(devices[0].address)
        #expect(rig.sub.next(after: 0, timeout: 5, where: { $0.topic.hasSuffix("/pages") }) != nil)
        usleep(2_500_000)  // the broker autosaves the subscriber's session

        // Fill the filesystem, then take the broker away.
        let filler = rig.daemon.stateDir + "/filler"
        _ = try runCommand("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"], timeout: 30)
        rig.broker.stop()
        for d in devices.dropFirst() { try rig.press(d.address); usleep(150_000) }
        usleep(300_000)
        let status = try rig.daemon.control(["cmd": "status"])
        #expect(status["store"]?["fault"]?.stringValue != nil, "status reports the store fault: \(status.text)")
        #expect(rig.daemon.isRunning)

        try rig.broker.start()
        let want = Set(devices.map(\.id))
        let got = rig.sub.wait(timeout: 30) { msgs in
            Set(msgs.filter { $0.topic.hasSuffix("/pages") }.compactMap { $0.json?["device"]?.stringValue }) == want
        }
        let pages = got.filter { $0.topic.hasSuffix("/pages") }.compactMap(\.json)
        #expect(Set(pages.compactMap { $0["device"]?.stringValue }) == want, "every press paged although the disk was full")
        for d in devices {
            let mine = pages.filter { $0["device"]?.stringValue == d.id }
            let distinct = Set(mine.compactMap { $0["msg_id"]?.stringValue })
            #expect(Set(mine.compactMap { $0["alert"]?.stringValue }).count == 1, "\(d.id): one alert id")
            #expect(distinct.count == Set(mine.compactMap { $0["member"]?.stringValue }).count, "\(d.id): one page per member (by msg_id)")
        }

        // Room again: everything held in memory is written; a restart keeps every alert.
        try FileManager.default.removeItem(atPath: filler)
        let deadline = Date(timeIntervalSinceNow: 20)
        while Date() < deadline, (try? rig.daemon.control(["cmd": "status"]))?["store"]?["fault"]?.stringValue != nil { usleep(200_000) }
        #expect((try rig.daemon.control(["cmd": "status"]))["store"]?["fault"]?.stringValue == nil, "the fault clears once the store writes again")
        #expect(try rig.waitDelivered(timeout: 20))
        rig.daemon.stop()
        let before = rig.pages.count
        try rig.daemon.start()
        let alerts = try rig.daemon.control(["cmd": "alerts"])
        let open = Set((alerts["alerts"]?.arrayValue ?? []).compactMap { $0["device"]?.stringValue })
        #expect(open == want, "every alert survived the restart: \(open)")
        usleep(1_000_000)
        #expect(rig.pages.count == before, "no page sent twice after the restart")
    }
}

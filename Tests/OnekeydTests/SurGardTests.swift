import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// A Sur-Gard receiver on a pty (7E1): events are ACKed only after they are stored and paged
/// through the same path as EV1527 presses; garbage is NAKed; heartbeats are ACKed.
@Suite(.serialized) struct SurGardReceiverTests {
    /// A daemon with one Sur-Gard receiver port (7E1) and one dialer enrolled on account 1234.
    static func daemon(broker: Broker, receiver pty: PseudoTerminal) throws -> DaemonProcess {
        let port = broker.port
        return try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: nil, stateDir: state, socket: socket, devices: [], extra: """
                [[port]]
                path = "\(pty.path)"
                driver = "surgard"
                parity = "even"
                data_bits = 7

                [[device]]
                id = "dialer-zhang-301"
                driver = "surgard"
                address = "1234"
                grid = "grid-07"
                resident = "张奶奶"
                location = "双合店社区 1栋301"
                """)
        }
    }

    @Test func contactIDEventsAreStoredThenACKedAndPaged() throws {
        let broker = try Broker()
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"])
        let pty = try PseudoTerminal()
        let daemon = try Self.daemon(broker: broker, receiver: pty)
        try daemon.start()
        defer { daemon.stop(); sub.close(); broker.stop() }

        func send(_ s: String) throws -> [UInt8] {
            try pty.write(Array(s.utf8))
            return pty.read(timeoutMs: 5000)
        }
        #expect(try send("1011           @    \u{14}") == [0x06], "heartbeat ACKed")
        #expect(try send("noise\u{14}") == [0x15], "garbage NAKed")
        #expect(try send("5011 181234E12101001\u{14}") == [0x06], "event ACKed")
        // ACK means stored: the alert is in the store already.
        let alerts = try daemon.control(line: #"{"cmd":"alerts"}"#)["alerts"]?.arrayValue ?? []
        #expect(alerts.count == 1 && alerts.first?["device"]?.stringValue == "dialer-zhang-301")
        let page = sub.next(after: 0, timeout: 10) { $0.topic.hasSuffix("/pages") }?.1.json
        #expect(page?["kind"]?.stringValue == "panic" && page?["resident"]?.stringValue == "张奶奶")
        // A restore is an event, and a cancel (406) closes the alert.
        #expect(try send("5011 181234R12101001\u{14}") == [0x06])
        #expect(try send("5011 181234E40601001\u{14}") == [0x06])
        // The alert's state goes out before the event that closed it: wait for both.
        let closed = sub.wait(timeout: 5) { msgs in
            msgs.contains { $0.json?["state"]?.stringValue == "cancelled" }
                && msgs.contains { $0.topic.hasSuffix("/events") && $0.json?["kind"]?.stringValue == "cancel" }
        }
        #expect(closed.contains { $0.json?["state"]?.stringValue == "cancelled" })
        let events = sub.all.filter { $0.topic.hasSuffix("/events") }.compactMap { $0.json?["kind"]?.stringValue }
        #expect(events == ["panic", "restore", "cancel"])
        #expect(try daemon.control(["cmd": "status"])["counters"]?["garbage_bytes"]?.intValue == 6)
    }

    /// An ACK promises the message is stored. While the store cannot write, the first send is
    /// NAKed — and so are the receiver's resends of it, which the desk folds into the held event
    /// (they were ACKed, and the receiver dropped a message held only in memory: found by a
    /// red-team run). Once the store writes again, a resend is ACKed.
    @Test(.enabled(if: getuid() == 0, "mounts a tmpfs"))
    func resendsAreNAKedWhileTheStoreCannotWrite() throws {
        let broker = try Broker()
        let pty = try PseudoTerminal()
        let daemon = try Self.daemon(broker: broker, receiver: pty)
        try FileManager.default.createDirectory(atPath: daemon.stateDir, withIntermediateDirectories: true)
        let mounted = try runCommand("/bin/mount", ["-t", "tmpfs", "-o", "size=4m", "onekeyd-surgard-full", daemon.stateDir])
        try #require(mounted.status == 0, "mount: \(mounted.stderr)")
        defer { _ = try? runCommand("/bin/umount", ["-l", daemon.stateDir]) }
        try daemon.start()
        defer { daemon.stop(); broker.stop() }
        func send(_ s: String) throws -> [UInt8] {
            try pty.write(Array(s.utf8))
            return pty.read(timeoutMs: 5000)
        }
        #expect(try send("1011           @    \u{14}") == [0x06], "heartbeat ACKed")
        let filler = daemon.stateDir + "/filler"
        _ = try runCommand("/bin/dd", ["if=/dev/zero", "of=\(filler)", "bs=64k"], timeout: 30)
        let event = "5011 181234E12101001\u{14}"
        for attempt in 1...3 {
            #expect(try send(event) == [0x15], "send \(attempt) NAKed while the store cannot write")
        }
        try FileManager.default.removeItem(atPath: filler)
        let deadline = Date(timeIntervalSinceNow: 20)
        var acked = false
        while !acked && Date() < deadline {
            acked = try send(event) == [0x06]
            if !acked { usleep(500_000) }
        }
        #expect(acked, "ACKed once the store writes again")
        let alerts = try daemon.control(line: #"{"cmd":"alerts"}"#)["alerts"]?.arrayValue ?? []
        #expect(alerts.count == 1, "one alert for the message and its resends")
    }
}

import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// A Sur-Gard receiver on a pty (7E1): events are ACKed only after they are stored and paged
/// through the same path as EV1527 presses; garbage is NAKed; heartbeats are ACKed.
@Suite(.serialized) struct SurGardReceiverTests {
    @Test func contactIDEventsAreStoredThenACKedAndPaged() throws {
        let broker = try Broker()
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"])
        let pty = try PseudoTerminal()
        let port = broker.port
        let daemon = try DaemonProcess { state, socket in
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
        let closed = sub.wait(timeout: 5) { msgs in msgs.contains { $0.json?["state"]?.stringValue == "cancelled" } }
        #expect(closed.contains { $0.json?["state"]?.stringValue == "cancelled" })
        let events = sub.all.filter { $0.topic.hasSuffix("/events") }.compactMap { $0.json?["kind"]?.stringValue }
        #expect(events == ["panic", "restore", "cancel"])
        #expect(try daemon.control(["cmd": "status"])["counters"]?["garbage_bytes"]?.intValue == 6)
    }
}

import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// udev discovery with umockdev: the real libudev sees a faked sysfs in which one tty carries
/// ONEKEY_DRIVER (as udev-rules/60-onekeyd.rules would set) and another does not. The daemon
/// runs under `umockdev-run`; the receiver's tty node is a pty in the testbed, fed by a
/// umockdev script that "presses the button".
@Suite(.serialized) struct UdevDiscoveryTests {
    static let devices = """
        P: /devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.0/ttyUSB0/tty/ttyUSB0
        N: ttyUSB0
        E: DEVNAME=/dev/ttyUSB0
        E: MAJOR=188
        E: MINOR=0
        E: SUBSYSTEM=tty
        E: ID_VENDOR_ID=1a86
        E: ID_MODEL_ID=7523
        E: ONEKEY_DRIVER=ev1527
        A: dev=188:0

        P: /devices/platform/serial8250/tty/ttyS0
        N: ttyS0
        E: DEVNAME=/dev/ttyS0
        E: MAJOR=4
        E: MINOR=64
        E: SUBSYSTEM=tty
        A: dev=4:64

        """

    /// umockdev's script format: control characters as caret notation (^@ is NUL), '^' as "^`".
    static func scriptEscaped(_ bytes: [UInt8]) -> Data {
        var out = [UInt8]()
        for b in bytes {
            if b < 32 { out += [UInt8(ascii: "^"), b + 64] } else if b == UInt8(ascii: "^") { out += Array("^`".utf8) } else { out.append(b) }
        }
        return Data(out)
    }

    @Test func aTaggedReceiverIsFoundOpenedAndItsPressPaged() throws {
        let broker = try Broker()
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"])
        let port = broker.port
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: nil, stateDir: state, socket: socket)
        }
        let deviceFile = daemon.directory + "/receivers.umockdev"
        try Self.devices.write(toFile: deviceFile, atomically: true, encoding: .utf8)
        // 1.5 s after the daemon opens the node: line noise, then a press (the module sends it twice).
        let press = EV1527Decoder.encode(address: "A1B2C", key: 8)!
        let script = Data("r 1500 ".utf8) + Self.scriptEscaped([0x00, 0x42] + press + press) + Data("\n".utf8)
        let scriptFile = daemon.directory + "/press.script"
        try script.write(to: URL(fileURLWithPath: scriptFile))
        daemon.launcher = ["/usr/bin/umockdev-run", "-d", deviceFile, "-s", "/dev/ttyUSB0=\(scriptFile)", "--"]
        try daemon.start()

        // Found by the first enumeration, before READY: the tagged tty only.
        let ports = try daemon.control(["cmd": "status"])["ports"]?.arrayValue ?? []
        #expect(ports.compactMap { $0["path"]?.stringValue } == ["/dev/ttyUSB0"])
        #expect(ports.first?["driver"]?.stringValue == "ev1527")
        #expect(daemon.log.contains("udev: found ev1527 receiver /dev/ttyUSB0"))

        guard let (_, page) = sub.next(after: 0, timeout: 10, where: { $0.topic.hasSuffix("/pages") }) else {
            Issue.record("no page; log:\n\(daemon.log)"); return
        }
        #expect(page.json?["device"]?.stringValue == "btn-chen-401")
        usleep(300_000)
        let status = try daemon.control(["cmd": "status"])
        #expect(status["counters"]?["repeat_frames"]?.intValue == 1)
        #expect(status["counters"]?["garbage_bytes"]?.intValue == 2)
        #expect(sub.all.filter { $0.topic.contains("/alerts/") && !$0.payload.isEmpty }.compactMap { $0.json?["id"]?.stringValue }.count >= 1)
        daemon.stop()
        sub.close()
        broker.stop()
    }

    @Test func aTaggedUSBFootSwitchIsGrabbedAndAKeyDownIsAPanic() throws {
        let broker = try Broker()
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/#"])
        let port = broker.port
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: nil, stateDir: state, socket: socket, devices: [], extra: """
                [[device]]
                id = "footswitch-li-102"
                driver = "evdev"
                address = "FootSwitch_PCsensor_0001"
                grid = "grid-07"
                resident = "李爷爷"
                """)
        }
        let deviceFile = daemon.directory + "/input.umockdev"
        try """
            P: /devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/0003:1A86:E026.0001/input/input5/event5
            N: input/event5
            E: DEVNAME=/dev/input/event5
            E: MAJOR=13
            E: MINOR=69
            E: SUBSYSTEM=input
            E: ID_INPUT=1
            E: ID_INPUT_KEY=1
            E: ID_SERIAL=FootSwitch_PCsensor_0001
            E: ONEKEY_DRIVER=evdev
            A: dev=13:69

            """.write(toFile: deviceFile, atomically: true, encoding: .utf8)
        // KEY_A down, SYN, up, SYN: one press, 1 s after the device is opened.
        let events = daemon.directory + "/press.events"
        try "E: 1.000000 0001 001e 0001\nE: 1.000000 0000 0000 0000\nE: 1.100000 0001 001e 0000\nE: 1.100000 0000 0000 0000\n"
            .write(toFile: events, atomically: true, encoding: .utf8)
        daemon.launcher = ["/usr/bin/umockdev-run", "-d", deviceFile, "-e", "/dev/input/event5=\(events)", "--"]
        try daemon.start()
        defer { daemon.stop(); sub.close(); broker.stop() }

        let ports = try daemon.control(["cmd": "status"])["ports"]?.arrayValue ?? []
        #expect(ports.first?["path"]?.stringValue == "/dev/input/event5" && ports.first?["state"]?.stringValue == "open")
        guard let (_, page) = sub.next(after: 0, timeout: 10, where: { $0.topic.hasSuffix("/pages") }) else {
            Issue.record("no page; log:\n\(daemon.log)"); return
        }
        #expect(page.json?["device"]?.stringValue == "footswitch-li-102" && page.json?["kind"]?.stringValue == "panic")
        #expect(!daemon.log.contains("could not grab"))
        usleep(300_000)
        #expect(sub.all.filter { $0.topic.hasSuffix("/events") }.count == 1, "only the key-down is an event")
    }
}

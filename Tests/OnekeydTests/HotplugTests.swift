import Foundation
import Glibc
import OnekeyCore
import OnekeyHarness
import Testing

/// udev hotplug with umockdev: a helper owns the testbed (under umockdev-wrapper), runs the real
/// daemon inside it, and plugs and unplugs a receiver while the daemon runs.
@Suite(.serialized) struct HotplugTests {
    static let syspath = "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/ttyUSB1/tty/ttyUSB1"
    static let receiver = """
        P: /devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0/ttyUSB1/tty/ttyUSB1
        N: ttyUSB1
        E: DEVNAME=/dev/ttyUSB1
        E: MAJOR=188
        E: MINOR=1
        E: SUBSYSTEM=tty
        E: ONEKEY_DRIVER=ev1527
        A: dev=188:1

        """

    func ports(_ daemon: DaemonProcess) throws -> [String] {
        (try daemon.control(["cmd": "status"])["ports"]?.arrayValue ?? []).filter { $0["state"]?.stringValue == "open" }.compactMap { $0["path"]?.stringValue }
    }

    func waitPorts(_ daemon: DaemonProcess, _ expected: [String]) throws -> Bool {
        for _ in 0..<200 {
            if try ports(daemon) == expected { return true }
            usleep(25_000)
        }
        return false
    }

    @Test func aReceiverPluggedInAtRunTimeIsOpenedAndDroppedWhenUnplugged() throws {
        let broker = try Broker()
        let sub = try Subscriber(port: broker.port, topics: ["onekey/v1/members/+/pages"])
        let port = broker.port
        let daemon = try DaemonProcess { state, socket in
            SampleConfig.text(brokerPort: port, portPath: nil, stateDir: state, socket: socket,
                              devices: [("btn-chen-401", "A1B2C"), ("btn-wang-502", "D4E5F")])
        }
        let description = daemon.directory + "/receiver.umockdev"
        try Self.receiver.write(toFile: description, atomically: true, encoding: .utf8)
        daemon.launcher = ["/usr/bin/umockdev-wrapper", Binaries.path("onekey-umockdev-helper"), "--"]
        try daemon.start()
        defer { daemon.stop(); sub.close(); broker.stop() }
        #expect(try ports(daemon).isEmpty)

        // Plug in: found by the monitor, opened, and a press on it is paged.
        daemon.tellLauncher("add \(description)")
        #expect(try waitPorts(daemon, ["/dev/ttyUSB1"]), "log:\n\(daemon.log)")
        daemon.tellLauncher("write /dev/ttyUSB1 \(Rig.frame("A1B2C").hex)")
        #expect(sub.next(after: 0, timeout: 10) { $0.json?["device"]?.stringValue == "btn-chen-401" } != nil)

        // Unplug: the port is dropped.
        daemon.tellLauncher("remove \(Self.syspath)")
        #expect(try waitPorts(daemon, []))
        #expect(daemon.log.contains("udev: receiver /dev/ttyUSB1 removed"))

        // Plug back in (as ttyUSB2, as a replugged USB adapter often is; umockdev 0.17 cannot
        // re-create a removed node under the same name): served again.
        let replugged = daemon.directory + "/replugged.umockdev"
        try Self.receiver.replacingOccurrences(of: "ttyUSB1", with: "ttyUSB2").replacingOccurrences(of: "MINOR=1", with: "MINOR=2")
            .replacingOccurrences(of: "188:1", with: "188:2").replacingOccurrences(of: "1-3", with: "1-4")
            .write(toFile: replugged, atomically: true, encoding: .utf8)
        daemon.tellLauncher("add \(replugged)")
        #expect(try waitPorts(daemon, ["/dev/ttyUSB2"]))
        daemon.tellLauncher("write /dev/ttyUSB2 \(Rig.frame("D4E5F").hex)")
        #expect(sub.next(after: 0, timeout: 10) { $0.json?["device"]?.stringValue == "btn-wang-502" } != nil)
    }
}

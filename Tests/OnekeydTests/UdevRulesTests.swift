import Foundation
import Glibc
import OnekeyHarness
import OnekeyLinux
import Testing

/// udev-rules/61-onekeyd.rules evaluated by the real udev rule engine: `udevadm test` under
/// `umockdev-run`, so usb_id reads the USB descriptors of a faked sysfs, and Debian's own rules
/// (60-serial.rules …) run before ours as on a real system. The rules under test (and an
/// installer's local file) are put in /etc/udev/rules.d inside a private mount namespace
/// (`unshare -m` + tmpfs), so the host's udev is untouched. Needs root, udevadm, umockdev.
@Suite(.serialized) struct UdevRulesTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static var rules: String { (try? String(contentsOfFile: repo + "/udev-rules/61-onekeyd.rules", encoding: .utf8)) ?? "" }

    /// A USB serial adapter as the kernel shows it in sysfs: the USB device with its string
    /// descriptors, one interface, the usb-serial port and its tty.
    struct Adapter {
        var vendor: String
        var product: String
        var manufacturer: String
        var productString: String
        var serial: String?
        var interface = "00"
        var driver = "cp210x"

        var sysPath: String { "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1:1.\(Int(interface)!)/ttyUSB0/tty/ttyUSB0" }

        var umockdev: String {
            let usb = "/devices/pci0000:00/0000:00:14.0/usb1/1-1"
            let intf = "\(usb)/1-1:1.\(Int(interface)!)"
            return """
                P: \(usb)
                N: bus/usb/001/002
                E: DEVNAME=/dev/bus/usb/001/002
                E: DEVTYPE=usb_device
                E: DRIVER=usb
                E: SUBSYSTEM=usb
                E: PRODUCT=\(vendor)/\(product)/100
                A: bDeviceClass=00
                A: bNumConfigurations=1
                A: bNumInterfaces= 1
                A: bcdDevice=0100
                A: busnum=1
                A: devnum=2
                A: devpath=1
                A: idProduct=\(product)
                A: idVendor=\(vendor)
                A: manufacturer=\(manufacturer)
                A: product=\(productString)
                \(serial.map { "A: serial=\($0)\n" } ?? "")A: speed=12
                A: dev=189:1

                P: \(intf)
                E: DEVTYPE=usb_interface
                E: DRIVER=\(driver)
                E: SUBSYSTEM=usb
                A: bInterfaceClass=ff
                A: bInterfaceNumber=\(interface)
                A: bInterfaceProtocol=00
                A: bInterfaceSubClass=00
                A: bNumEndpoints=02

                P: \(intf)/ttyUSB0
                E: DRIVER=\(driver)
                E: SUBSYSTEM=usb-serial
                A: port_number=0

                P: \(intf)/ttyUSB0/tty/ttyUSB0
                N: ttyUSB0
                E: DEVNAME=/dev/ttyUSB0
                E: MAJOR=188
                E: MINOR=0
                E: SUBSYSTEM=tty
                A: dev=188:0

                """
        }
    }

    static let receiver = Adapter(vendor: "10c4", product: "ea60", manufacturer: "Silicon Labs", productString: "ONEKEY-EV1527", serial: "0001")
    static let ch340 = Adapter(vendor: "1a86", product: "7523", manufacturer: "QinHeng Electronics", productString: "USB Serial", serial: nil, driver: "ch341-uart")
    static let cp2102 = Adapter(vendor: "10c4", product: "ea60", manufacturer: "Silicon Labs", productString: "CP2102 USB to UART Bridge Controller", serial: "0001")
    static let ftdi = Adapter(vendor: "0403", product: "6001", manufacturer: "FTDI", productString: "FT232R USB UART", serial: "A50285BI", driver: "ftdi_sio")

    /// The properties udev would store for `adapter` on `add`, with `local` as
    /// /etc/udev/rules.d/61-onekeyd-local.rules.
    func evaluate(_ adapter: Adapter, local: String? = nil) throws -> [String: String] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("onekeyd-udev-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try adapter.umockdev.write(toFile: dir + "/dev.umockdev", atomically: true, encoding: .utf8)
        try Self.rules.write(toFile: dir + "/61-onekeyd.rules", atomically: true, encoding: .utf8)
        var install = "cp \(dir)/61-onekeyd.rules /etc/udev/rules.d/"
        if let local {
            try local.write(toFile: dir + "/61-onekeyd-local.rules", atomically: true, encoding: .utf8)
            install += " && cp \(dir)/61-onekeyd-local.rules /etc/udev/rules.d/"
        }
        let script = "mkdir -p /etc/udev/rules.d && mount -t tmpfs onekeyd-test /etc/udev/rules.d && \(install) && "
            + "exec umockdev-run -d \(dir)/dev.umockdev -- udevadm test --action=add \(adapter.sysPath)"
        let r = try runCommand("/usr/bin/unshare", ["-m", "/bin/sh", "-c", script])
        #expect(r.status == 0, "udevadm test: \(r.stderr.suffix(2000))")
        var properties: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), line[..<eq].allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "_" || $0 == "." }) else { continue }
            properties[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        #expect(properties["SUBSYSTEM"] == "tty", "no properties in: \(r.stdout.suffix(1500))")
        return properties
    }

    @Test func aRecognisedReceiverIsClaimedAfterUsbIdRan() throws {
        let p = try evaluate(Self.receiver)
        #expect(p["ID_VENDOR_ID"] == "10c4" && p["ID_MODEL"] == "ONEKEY-EV1527", "usb_id ran: \(p)")
        #expect(p["ONEKEY_DRIVER"] == "ev1527")
        #expect(p["ID_MM_DEVICE_IGNORE"] == "1")
        #expect(p["DEVLINKS"]?.contains("/dev/onekey/ev1527-ttyUSB0") == true, "\(p["DEVLINKS"] ?? "-")")
    }

    @Test func genericAdaptersAreLeftAlone() throws {
        for adapter in [Self.ch340, Self.cp2102, Self.ftdi] {
            let p = try evaluate(adapter)
            #expect(p["ID_VENDOR_ID"] == adapter.vendor, "usb_id ran for \(adapter.productString)")
            #expect(p["ONEKEY_DRIVER"] == nil, "\(adapter.productString) claimed: \(p)")
            #expect(p["ID_MM_DEVICE_IGNORE"] == nil)
        }
    }

    @Test func anInstallersLocalFileEnrolsAReceiverBySerial() throws {
        // The documented way: one line in /etc/udev/rules.d/61-onekeyd-local.rules.
        let local = #"SUBSYSTEM=="tty", ENV{ID_SERIAL_SHORT}=="A50285BI", ENV{ONEKEY_DRIVER}="surgard", ENV{ONEKEY_PARITY}="even", ENV{ONEKEY_DATA_BITS}="7""# + "\n"
        #expect(Self.rules.contains("61-onekeyd-local.rules") && Self.rules.contains("ID_SERIAL_SHORT"), "the rules file documents it")
        let p = try evaluate(Self.ftdi, local: local)
        #expect(p["ONEKEY_DRIVER"] == "surgard" && p["ONEKEY_PARITY"] == "even" && p["ONEKEY_DATA_BITS"] == "7")
        #expect(p["ID_MM_DEVICE_IGNORE"] == "1", "the packaged file claims what the local file enrolled")
        var other = Self.ftdi
        other.serial = "B77777ZZ"
        #expect(try evaluate(other, local: local)["ONEKEY_DRIVER"] == nil, "another FTDI adapter is not claimed")
    }

    @Test func theModemExampleClaimsOnlyTheATInterface() throws {
        // The commented example lines for the modem, uncommented into a local file as documented.
        let examples = Self.rules.split(separator: "\n").filter { $0.hasPrefix("#   SUBSYSTEM==") && $0.contains("\"modem\"") }
            .map { $0.dropFirst(4) }.joined(separator: "\n") + "\n"
        #expect(examples.contains("1e0e"))
        var sim7600 = Adapter(vendor: "1e0e", product: "9001", manufacturer: "SimTech, Incorporated", productString: "SimTech, Incorporated", serial: "0123456789ABCDEF", interface: "02", driver: "option")
        let at = try evaluate(sim7600, local: examples)
        #expect(at["ONEKEY_DRIVER"] == "modem" && at["ID_MM_DEVICE_IGNORE"] == "1", "\(at)")
        sim7600.interface = "01"
        #expect(try evaluate(sim7600, local: examples)["ONEKEY_DRIVER"] == nil, "the NMEA/diag interfaces stay ModemManager's")
    }

    /// SerialPort.open claims a tty with TIOCEXCL: a second open by an unprivileged process fails
    /// with EBUSY while onekeyd holds it, and works again once it is closed. A virtual console
    /// nobody uses (tty63) stands in for a serial port: same tty layer, no hardware touched.
    @Test func anOpenSerialPortIsExclusive() throws {
        let tty = "/dev/tty63"
        #expect(FileManager.default.fileExists(atPath: tty), "this test needs a non-pty tty node")
        guard FileManager.default.fileExists(atPath: tty) else { return }
        var st = stat()
        stat(tty, &st)
        defer { chmod(tty, st.st_mode & 0o7777) }
        chmod(tty, 0o666)
        let probe = ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "exec 3<>\(tty) && echo opened"]
        #expect(try runCommand("/usr/bin/setpriv", probe).status == 0, "an unprivileged open works at first")
        let fd = try SerialPort.open(tty, line: SerialLine(baud: 9600, parity: .none, dataBits: 8))
        let refused = try runCommand("/usr/bin/setpriv", probe)
        #expect(refused.status != 0 && refused.stderr.contains("busy"), "\(refused)")
        close(fd)
        let allowed = try runCommand("/usr/bin/setpriv", probe)
        #expect(allowed.status == 0 && allowed.stdout.contains("opened"), "\(allowed)")
    }

    /// A pty slave (a socat/ser2net bridge) is not made exclusive: a restarted onekeyd could not
    /// open it again while the bridge holds the master.
    @Test func aPtyBridgeStaysReopenable() throws {
        let pty = try PseudoTerminal()
        chmod(pty.path, 0o666)
        let fd = try SerialPort.open(pty.path, line: SerialLine(baud: 9600, parity: .none, dataBits: 8))
        close(fd)
        let again = try runCommand("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "exec 3<>\(pty.path) && echo opened"])
        #expect(again.status == 0 && again.stdout.contains("opened"), "\(again)")
    }
}

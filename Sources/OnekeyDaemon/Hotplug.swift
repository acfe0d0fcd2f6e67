import Logging
import OnekeyCore
import OnekeyLinux

/// Receivers and buttons arriving and leaving at run time (udev "add"/"remove" of devices tagged
/// ONEKEY_DRIVER). The monitor is opened before the first enumeration, so nothing plugged in
/// between the two is missed. Ports bound by path in the configuration are left alone: they
/// reopen by themselves.
final class Hotplug {
    unowned let gateway: Gateway
    private let monitor: UdevMonitor
    private var source: EventLoop.IO?

    init(gateway: Gateway) throws {
        self.gateway = gateway
        monitor = try UdevMonitor()
    }

    func start() throws {
        source = try gateway.loop.addIO(fd: monitor.fd) { [unowned self] _ in
            while let (action, device) = monitor.receive() { handle(action, device) }
        }
    }

    func stop() {
        source?.cancel()
        source = nil
    }

    private func handle(_ action: String, _ device: UdevDevice) {
        guard let node = device.devnode else { return }
        switch action {
        case "add":
            Self.adopt(device, gateway: gateway)
        case "remove":
            guard let reader = gateway.ports[node], reader.config.line == 0 else { return }
            reader.stop()
            gateway.ports[node] = nil
            gateway.logger.notice("udev: receiver \(node) removed", metadata: ["port": "\(node)"])
            gateway.summaryChanged()
        default:
            break
        }
    }

    /// Opens a tagged device that no port serves yet, with its driver's defaults
    /// (ONEKEY_BAUD, ONEKEY_PARITY, ONEKEY_DATA_BITS override them).
    static func adopt(_ dev: UdevDevice, gateway: Gateway) {
        if dev.onekeyDriver == "modem", let node = dev.devnode { gateway.modem?.adopt(node: node); return }
        guard let node = dev.devnode, let name = dev.onekeyDriver, let driver = DriverKind(rawValue: name),
              gateway.ports[node] == nil else { return }
        let p = PortConfig(path: node, driver: driver, baud: Int(dev.properties["ONEKEY_BAUD"] ?? "") ?? driver.defaultBaud,
                           parity: Parity(rawValue: dev.properties["ONEKEY_PARITY"] ?? "") ?? .none,
                           dataBits: Int(dev.properties["ONEKEY_DATA_BITS"] ?? "") ?? 8, line: 0,
                           serial: dev.properties["ID_SERIAL"])
        let reader = PortReader(config: p, gateway: gateway)
        gateway.logger.notice("udev: found \(driver.rawValue) receiver \(node) (\(dev.syspath))", metadata: ["port": "\(node)"])
        gateway.ports[node] = reader
        reader.open()
    }
}

import CUdev
import Glibc

/// A device udev knows, with the properties our rules set (udev-rules/60-onekeyd.rules):
/// `ONEKEY_DRIVER` (ev1527 | surgard | evdev) marks a panic-button receiver.
public struct UdevDevice: Sendable, Equatable {
    public var syspath: String
    public var devnode: String?
    public var subsystem: String
    public var properties: [String: String]

    public var onekeyDriver: String? { properties["ONEKEY_DRIVER"] }
}

/// libudev enumeration (runs under umockdev in tests, since umockdev fakes sysfs for libudev).
public enum Udev {
    static func device(_ dev: OpaquePointer, subsystem: String) -> UdevDevice {
        var props = [String: String]()
        var p = udev_device_get_properties_list_entry(dev)
        while let prop = p {
            if let k = udev_list_entry_get_name(prop), let v = udev_list_entry_get_value(prop) {
                props[String(cString: k)] = String(cString: v)
            }
            p = udev_list_entry_get_next(prop)
        }
        return UdevDevice(syspath: udev_device_get_syspath(dev).map { String(cString: $0) } ?? "",
                          devnode: udev_device_get_devnode(dev).map { String(cString: $0) },
                          subsystem: udev_device_get_subsystem(dev).map { String(cString: $0) } ?? subsystem, properties: props)
    }

    /// Devices in `subsystems` that carry `ONEKEY_DRIVER`.
    public static func enumerateReceivers(subsystems: [String] = ["tty", "input"]) throws(SystemError) -> [UdevDevice] {
        guard let udev = udev_new() else { throw SystemError("udev_new") }
        defer { udev_unref(udev) }
        var out = [UdevDevice]()
        for subsystem in subsystems {
            guard let e = udev_enumerate_new(udev) else { throw SystemError("udev_enumerate_new") }
            defer { udev_enumerate_unref(e) }
            udev_enumerate_add_match_subsystem(e, subsystem)
            udev_enumerate_add_match_property(e, "ONEKEY_DRIVER", "*")
            _ = udev_enumerate_scan_devices(e)
            var entry = udev_enumerate_get_list_entry(e)
            while let current = entry {
                defer { entry = udev_list_entry_get_next(current) }
                guard let name = udev_list_entry_get_name(current),
                      let dev = udev_device_new_from_syspath(udev, name) else { continue }
                defer { udev_device_unref(dev) }
                let d = device(dev, subsystem: subsystem)
                if d.onekeyDriver != nil { out.append(d) }
            }
        }
        return out
    }
}

/// udev hotplug: "add" and "remove" of devices in the watched subsystems, from the udev daemon's
/// netlink group (or umockdev's testbed). Read `fd` when readable, then call `receive()`.
public final class UdevMonitor: @unchecked Sendable {
    private let udev: OpaquePointer
    private let monitor: OpaquePointer
    public let fd: Int32

    public init(subsystems: [String] = ["tty", "input"]) throws(SystemError) {
        guard let udev = udev_new() else { throw SystemError("udev_new") }
        guard let monitor = udev_monitor_new_from_netlink(udev, "udev") else {
            udev_unref(udev)
            throw SystemError("udev_monitor_new_from_netlink")
        }
        self.udev = udev
        self.monitor = monitor
        for s in subsystems { udev_monitor_filter_add_match_subsystem_devtype(monitor, s, nil) }
        guard udev_monitor_enable_receiving(monitor) >= 0 else { throw SystemError("udev_monitor_enable_receiving") }
        fd = udev_monitor_get_fd(monitor)
        try setNonBlocking(fd)
    }

    /// The next event, or nil when none is waiting.
    public func receive() -> (action: String, device: UdevDevice)? {
        guard let dev = udev_monitor_receive_device(monitor) else { return nil }
        defer { udev_device_unref(dev) }
        let action = udev_device_get_action(dev).map { String(cString: $0) } ?? ""
        return (action, Udev.device(dev, subsystem: ""))
    }

    deinit {
        udev_monitor_unref(monitor)
        udev_unref(udev)
    }
}
